"""The ExtrasStore contract (message deletion, feedback counts, prompts, chat tags):
runs on SQLite and on MongoDB."""

from __future__ import annotations

import pytest

from gust.domain.ids import new_id
from gust.domain.models import Chat, Message
from gust.ports.extras_store import ExtrasStore, Prompt, PromptConflict
from tests.support.backends import StoreAdapter, adapter


@pytest.fixture
def extras(store: StoreAdapter) -> ExtrasStore:
    return store


def prompt(command: str, *, user_id: str = "u1", team_id: str | None = None, version: int = 1,
           prompt_id: str | None = None, body: str = "Say {{x}}") -> Prompt:
    return Prompt(id=prompt_id or new_id(), name=f"Name {command}", command=command, body=body,
                  user_id=user_id, team_id=team_id, version=version, created_at=1.0,
                  updated_at=float(version))


def message(chat_id: str, *, user_id: str = "u1", team_id: str = "t1", model: str = "m",
            rating: int | None = None, parent_id: str | None = None) -> Message:
    return Message(id=new_id(), chat_id=chat_id, user_id=user_id, team_id=team_id, role="assistant",
                   content="a", status="complete", created_at=1.0, updated_at=1.0, model=model,
                   parent_id=parent_id,
                   feedback={"rating": rating, "comment": None, "updated_at": 1.0} if rating else None)


async def test_prompts_versions_and_scopes(extras: ExtrasStore) -> None:
    mine = prompt("summarise")
    team = prompt("review", user_id="u2", team_id="t1")
    theirs = prompt("summarise", user_id="u3")  # another user's scope: the same command is fine
    other_team = prompt("review", user_id="u9", team_id="t2")
    for p in (mine, team, theirs, other_team):
        await extras.create_prompt(p)
    assert await extras.get_prompt(mine.id) == mine
    assert await extras.get_prompt(new_id()) is None
    assert [p.id for p in await extras.list_prompts("u1", "t1")] == [team.id, mine.id]

    with pytest.raises(PromptConflict):
        await extras.create_prompt(prompt("summarise"))  # taken in u1's scope
    with pytest.raises(PromptConflict):
        await extras.create_prompt(prompt("review", user_id="u5", team_id="t1"))  # taken in t1's

    v2 = prompt("summarise", version=2, prompt_id=mine.id, body="Say {{x}} twice")
    await extras.add_prompt_version(v2)
    assert await extras.get_prompt(mine.id) == v2
    assert [p.version for p in await extras.list_prompt_versions(mine.id)] == [2, 1]
    assert (await extras.list_prompt_versions(mine.id))[1] == mine
    clash = prompt("other", version=1)
    await extras.create_prompt(clash)
    with pytest.raises(PromptConflict):
        await extras.add_prompt_version(prompt("summarise", version=2, prompt_id=clash.id))

    assert await extras.delete_prompt(mine.id) is True
    assert await extras.get_prompt(mine.id) is None
    assert await extras.list_prompt_versions(mine.id) == []
    assert await extras.delete_prompt(mine.id) is False
    await extras.create_prompt(prompt("summarise"))  # the command is free again


async def test_delete_messages_only_of_that_chat_and_owner_with_tombstones(extras: ExtrasStore) -> None:
    kept = message("c1")
    doomed = [message("c1"), message("c1")]
    foreign = message("c1", user_id="u2")
    for m in (kept, *doomed, foreign):
        await extras.create_message(m)
    count = await extras.delete_messages("u1", "c1", [d.id for d in doomed] + [foreign.id])
    assert count == 2
    assert [m.id for m in await extras.list_messages("u1", "c1")] == [kept.id]
    assert [m.id for m in await extras.list_messages("u2", "c1")] == [foreign.id]
    tombstones = await adapter(extras).list_search_tombstones(limit=10)
    assert {t.target_id for t in tombstones if t.kind == "message"} >= {d.id for d in doomed}


async def test_feedback_counts_per_model_within_a_team(extras: ExtrasStore) -> None:
    for m in (message("c1", rating=1), message("c1", rating=1), message("c1", rating=-1),
              message("c1", model="n", rating=-1), message("c1", model="n"),
              message("c9", team_id="t2", rating=1)):
        await extras.create_message(m)
    assert await extras.feedback_counts("t1") == {"m": {"up": 2, "down": 1}, "n": {"up": 0, "down": 1}}
    assert await extras.feedback_counts("t3") == {}


async def test_chats_filtered_by_tag(extras: ExtrasStore) -> None:
    def chat(tags: list[str], user_id: str = "u1", at: float = 1.0) -> Chat:
        return Chat(id=new_id(), user_id=user_id, team_id="t1", title="t", model=None,
                    created_at=at, updated_at=at, tags=tags)

    a, b, c = chat(["work", "ideas"], at=1), chat(["ideas"], at=2), chat([], at=3)
    theirs = chat(["ideas"], user_id="u2")
    for x in (a, b, c, theirs):
        await extras.create_chat(x)
    assert [x.id for x in await extras.list_chats("u1", limit=10, tag="ideas")] == [b.id, a.id]
    assert [x.id for x in await extras.list_chats("u1", limit=10, tag="work")] == [a.id]
    assert await extras.list_chats("u1", limit=10, tag="wor") == []
    assert len(await extras.list_chats("u1", limit=10)) == 3
    await extras.update_chat("u1", c.id, {"tags": ["ideas"]})
    assert [x.id for x in await extras.list_chats("u1", limit=1, tag="ideas")] == [c.id]
    got = await extras.get_chat("u1", a.id)
    assert got is not None and got.tags == ["work", "ideas"]
