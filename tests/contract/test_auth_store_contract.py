"""The accounts store contract (refresh tokens, API keys, invites, agents, error log):
every test runs on SQLite and on MongoDB (FerretDB)."""

from __future__ import annotations

import asyncio

import pytest

from gust.domain.accounts import Agent, AgentAvatar, ApiKey, ErrorLogEntry, Invite, RefreshToken
from gust.domain.errors import ValidationError
from gust.domain.ids import new_id
from gust.domain.models import User, UserRole
from gust.ports.accounts_store import AccountsStore


def make_user(email: str, team_id: str = "t1", role: UserRole = "user", created_at: float = 1000.0) -> User:
    return User(id=new_id(), email=email, display_name=email.split("@")[0], role=role,
                team_id=team_id, created_at=created_at)


def make_token(user_id: str, family_id: str, token_hash: str) -> RefreshToken:
    return RefreshToken(id=new_id(), user_id=user_id, family_id=family_id, token_hash=token_hash,
                        created_at=1.0, expires_at=10_000.0)


def make_agent(team_id: str, name: str) -> Agent:
    return Agent(id=new_id(), team_id=team_id, name=name, description="d", model=None, system_prompt="p",
                 created_by="u", created_at=1.0, updated_at=1.0)


async def test_team_users_admins_and_identities(store: AccountsStore) -> None:
    a = make_user("a@example.com", role="admin", created_at=1.0)
    b = make_user("b@example.com", created_at=2.0)
    b.identities = [{"provider": "github", "subject": "42"}, {"provider": "oidc", "subject": "s-1"}]
    other = make_user("c@example.com", team_id="t2", role="admin")
    for user in (b, a, other):
        await store.create_user(user)
    assert [u.id for u in await store.list_team_users("t1", limit=10)] == [a.id, b.id]
    assert [u.id for u in await store.list_team_users("t1", limit=1)] == [a.id]
    assert await store.count_admins("t1") == 1
    await store.update_user(a.id, {"disabled": True})
    assert await store.count_admins("t1") == 0
    found = await store.get_user_by_identity("oidc", "s-1")
    assert found is not None and found.id == b.id
    assert await store.get_user_by_identity("github", "s-1") is None
    assert await store.get_user_by_identity("oidc", "42") is None


async def test_refresh_token_is_used_once(store: AccountsStore) -> None:
    token = make_token("u1", "f1", "h1")
    await store.create_refresh_token(token)
    assert await store.get_refresh_token_by_hash("h1") == token
    assert await store.get_refresh_token_by_hash("h2") is None
    used, first = await store.use_refresh_token("h1", 5.0)
    assert first and used is not None and used.id == token.id and used.used_at == 5.0
    again, fresh = await store.use_refresh_token("h1", 6.0)
    assert not fresh and again is not None and again.family_id == "f1" and again.used_at == 5.0
    assert await store.use_refresh_token("unknown", 6.0) == (None, False)


async def test_concurrent_use_of_one_refresh_token_has_one_winner(store: AccountsStore) -> None:
    await store.create_refresh_token(make_token("u1", "f1", "race"))
    results = await asyncio.gather(*(store.use_refresh_token("race", 5.0) for _ in range(8)))
    assert sum(1 for _, won in results if won) == 1


async def test_revoke_family_and_user(store: AccountsStore) -> None:
    await store.create_refresh_token(make_token("u1", "f1", "a"))
    await store.create_refresh_token(make_token("u1", "f1", "b"))
    await store.create_refresh_token(make_token("u1", "f2", "c"))
    await store.create_refresh_token(make_token("u2", "f3", "d"))
    assert await store.revoke_refresh_family("f1", 7.0) == 2
    assert await store.revoke_refresh_family("f1", 8.0) == 0  # already revoked
    token, fresh = await store.use_refresh_token("a", 9.0)
    assert not fresh and token is not None and token.revoked_at == 7.0
    assert await store.revoke_user_refresh_tokens("u1", 9.0) == 1
    assert (await store.use_refresh_token("c", 9.5))[1] is False
    assert (await store.use_refresh_token("d", 9.5))[1] is True


async def test_api_keys(store: AccountsStore) -> None:
    k1 = ApiKey(id=new_id(), user_id="u1", name="ci", key_hash="kh1", prefix="gust_ab", created_at=1.0)
    k2 = ApiKey(id=new_id(), user_id="u1", name="cli", key_hash="kh2", prefix="gust_cd", created_at=2.0)
    k3 = ApiKey(id=new_id(), user_id="u2", name="x", key_hash="kh3", prefix="gust_ef", created_at=3.0)
    for key in (k1, k2, k3):
        await store.create_api_key(key)
    assert [k.id for k in await store.list_api_keys("u1")] == [k1.id, k2.id]
    assert await store.get_api_key_by_hash("kh3") == k3
    assert await store.get_api_key_by_hash("nope") is None
    await store.touch_api_key(k1.id, 50.0)
    touched = await store.get_api_key_by_hash("kh1")
    assert touched is not None and touched.last_used_at == 50.0
    assert not await store.delete_api_key("u2", k1.id)  # not the owner
    assert await store.delete_api_key("u1", k1.id)
    assert await store.get_api_key_by_hash("kh1") is None


async def test_invites_are_used_once_and_expire(store: AccountsStore) -> None:
    live = Invite(id=new_id(), team_id="t1", token_hash="ih1", role="user", created_by="u",
                  created_at=1.0, expires_at=100.0, email="x@example.com")
    expired = Invite(id=new_id(), team_id="t1", token_hash="ih2", role="admin", created_by="u",
                     created_at=2.0, expires_at=10.0)
    await store.create_invite(live)
    await store.create_invite(expired)
    assert [i.id for i in await store.list_invites("t1")] == [expired.id, live.id]
    assert await store.list_invites("t2") == []
    assert await store.get_invite_by_hash("ih1") == live
    assert await store.use_invite("ih2", "u9", 50.0) is None
    used = await store.use_invite("ih1", "u9", 50.0)
    assert used is not None and used.used_by == "u9" and used.used_at == 50.0
    assert await store.use_invite("ih1", "u10", 51.0) is None
    assert not await store.delete_invite("t2", live.id)
    assert await store.delete_invite("t1", live.id)
    assert await store.get_invite_by_hash("ih1") is None


async def test_agents_are_scoped_to_their_team(store: AccountsStore) -> None:
    b, a = make_agent("t1", "beta"), make_agent("t1", "alpha")
    theirs = make_agent("t2", "gamma")
    for agent in (b, a, theirs):
        await store.create_agent(agent)
    assert [x.id for x in await store.list_agents("t1")] == [a.id, b.id]
    assert await store.get_agent("t1", a.id) == a
    assert await store.get_agent("t1", theirs.id) is None
    updated = await store.update_agent("t1", a.id, {"name": "aardvark", "webhook_token_encrypted": "v1:x"})
    assert updated is not None and updated.name == "aardvark"
    assert await store.get_agent("t1", a.id) == updated
    assert await store.update_agent("t2", a.id, {"name": "stolen"}) is None
    with pytest.raises(ValidationError):
        await store.update_agent("t1", a.id, {"team_id": "t2"})

    avatar = AgentAvatar(agent_id=a.id, team_id="t1", content_type="image/png", data=b"\x89PNG\x00\xff")
    await store.put_agent_avatar(avatar)
    assert await store.get_agent_avatar("t1", a.id) == avatar
    assert await store.get_agent_avatar("t2", a.id) is None
    replaced = AgentAvatar(agent_id=a.id, team_id="t1", content_type="image/webp", data=b"RIFF")
    await store.put_agent_avatar(replaced)
    assert await store.get_agent_avatar("t1", a.id) == replaced

    assert not await store.delete_agent("t2", a.id)
    assert await store.delete_agent("t1", a.id)
    assert await store.get_agent("t1", a.id) is None
    assert await store.get_agent_avatar("t1", a.id) is None


async def test_error_log_keeps_a_quota_per_team(store: AccountsStore) -> None:
    def entry(i: int, team: str) -> ErrorLogEntry:
        return ErrorLogEntry(id=new_id(), created_at=float(i), severity="error", status=500, method="GET",
                             route="/api/x", request_id=f"{team}-{i}", error_type="KeyError",
                             user_id="u1", team_id=team)

    for i in range(3):
        await store.add_error(entry(i, "t1"), keep=5)
    for i in range(3, 20):  # t2 floods its own log: t1's entries stay
        await store.add_error(entry(i, "t2"), keep=5)
    t1 = [e.request_id for e in await store.list_errors(team_id="t1", limit=50)]
    assert t1 == ["t1-2", "t1-1", "t1-0"]
    t2 = [e.request_id for e in await store.list_errors(team_id="t2", limit=50)]
    assert t2 == [f"t2-{i}" for i in range(19, 14, -1)]
    assert [e.request_id for e in await store.list_errors(team_id="t2", limit=2)] == ["t2-19", "t2-18"]
    everything = await store.list_errors(team_id=None, limit=50)
    assert [e.request_id for e in everything] == t2 + t1


async def test_concurrent_use_of_one_invite_has_one_winner(store: AccountsStore) -> None:
    await store.create_invite(Invite(id=new_id(), team_id="t1", token_hash="race", role="user",
                                     created_by="u", created_at=1.0, expires_at=100.0))
    results = await asyncio.gather(*(store.use_invite("race", f"u{i}", 5.0) for i in range(8)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await store.get_invite_by_hash("race")
    assert stored is not None and stored.used_by == winners[0].used_by
