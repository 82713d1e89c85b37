"""The SharesStore contract (share-link snapshots): runs on SQLite and on MongoDB."""

from __future__ import annotations

import pytest

from gust.domain.ids import new_token
from gust.ports.shares_store import Share, SharesStore
from tests.support.backends import StoreAdapter


@pytest.fixture
def shares(store: StoreAdapter) -> SharesStore:
    return store


def make_share(user_id: str, chat_id: str, text: str) -> Share:
    return Share(
        id=new_token(),
        chat_id=chat_id,
        user_id=user_id,
        team_id="team-1",
        title="Shared ✓",
        model="m",
        created_at=1700000000.5,
        messages=[{"id": "q", "role": "user", "content": text, "parent_id": None, "usage": None}],
    )


async def test_a_share_round_trips_and_is_found_by_id_and_by_chat(shares: SharesStore) -> None:
    share = make_share("u1", "c1", "héllo 你好")
    assert await shares.put_share(share) is None
    assert await shares.get_share(share.id) == share
    assert await shares.get_chat_share("u1", "c1") == share
    assert await shares.get_chat_share("u2", "c1") is None  # another user's chat id: nothing
    assert await shares.get_share(new_token()) is None


async def test_sharing_again_replaces_the_previous_link(shares: SharesStore) -> None:
    first = make_share("u1", "c1", "one")
    second = make_share("u1", "c1", "two")
    other = make_share("u1", "c2", "other chat")
    await shares.put_share(first)
    await shares.put_share(other)
    assert await shares.put_share(second) == first
    assert await shares.get_share(first.id) is None
    assert await shares.get_share(second.id) == second
    assert await shares.get_chat_share("u1", "c1") == second
    assert await shares.get_share(other.id) == other


async def test_revoking_removes_only_that_chats_link(shares: SharesStore) -> None:
    mine = make_share("u1", "c1", "mine")
    theirs = make_share("u2", "c9", "theirs")
    await shares.put_share(mine)
    await shares.put_share(theirs)
    assert not await shares.delete_chat_share("u1", "c9")  # not u1's chat
    assert await shares.get_share(theirs.id) == theirs
    assert await shares.delete_chat_share("u1", "c1")
    assert await shares.get_share(mine.id) is None
    assert await shares.get_chat_share("u1", "c1") is None
    assert not await shares.delete_chat_share("u1", "c1")
