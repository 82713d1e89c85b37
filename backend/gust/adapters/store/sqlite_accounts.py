"""Accounts and security in the SQLite store: refresh tokens, API keys, invites, agents, errors."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from gust.adapters.store.account_records import check_agent_changes, dump, load
from gust.adapters.store.records import from_doc
from gust.domain.accounts import Agent, AgentAvatar, ApiKey, ErrorLogEntry, Invite, RefreshToken
from gust.domain.models import User

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    ("0200_accounts", """
    CREATE TABLE refresh_tokens (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        family_id TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        expires_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
    CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        data TEXT NOT NULL
    );
    CREATE INDEX api_keys_user ON api_keys (user_id);
    CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX invites_team ON invites (team_id, created_at);
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX agents_team ON agents (team_id, name);
    CREATE TABLE agent_avatars (
        agent_id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        content_type TEXT NOT NULL,
        image BLOB NOT NULL
    );
    CREATE TABLE error_logs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        team_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX error_logs_created ON error_logs (created_at)
    """),
    # The error log keeps a quota per team: pruning and listing go by team.
    ("0201_error_logs_team", """
    CREATE INDEX error_logs_team ON error_logs (team_id, created_at DESC, id DESC)
    """),
]


def _dumps(record: Any) -> str:
    return json.dumps(dump(record), ensure_ascii=False, separators=(",", ":"))


class SQLiteAccountsMixin:
    """Mixed into SQLiteStore (uses its `_read`/`_write` worker-thread helpers)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- users -----------------------------------------------------------------------
    async def list_team_users(self, team_id: str, *, limit: int) -> list[User]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM users WHERE team_id = ? "
                "ORDER BY json_extract(data, '$.created_at'), id LIMIT ?",
                (team_id, limit),
            ).fetchall()
        )
        return [from_doc(User, json.loads(r[0])) for r in rows]

    async def get_user_by_identity(self, provider: str, subject: str) -> User | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT users.data FROM users, json_each(users.data, '$.identities') AS ident "
                "WHERE json_array_length(users.data, '$.identities') > 0 "
                "AND json_extract(ident.value, '$.provider') = ? "
                "AND json_extract(ident.value, '$.subject') = ? LIMIT 1",
                (provider, subject),
            ).fetchone()
        )
        return from_doc(User, json.loads(row[0])) if row else None

    async def count_admins(self, team_id: str) -> int:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT COUNT(*) FROM users WHERE team_id = ? AND json_extract(data, '$.role') = 'admin' "
                "AND NOT json_extract(data, '$.disabled')",
                (team_id,),
            ).fetchone()
        )
        return int(row[0])

    # -- refresh tokens ----------------------------------------------------------------
    async def create_refresh_token(self, token: RefreshToken) -> None:
        row = (token.id, token.user_id, token.family_id, token.token_hash, token.expires_at, _dumps(token))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    async def get_refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
        )
        return load(RefreshToken, json.loads(row[0])) if row else None

    async def use_refresh_token(self, token_hash: str, at: float) -> tuple[RefreshToken | None, bool]:
        def op(conn: sqlite3.Connection) -> tuple[RefreshToken | None, bool]:
            row = conn.execute(
                "SELECT data FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if not row:
                return None, False
            token = load(RefreshToken, json.loads(row[0]))
            if token.used_at is not None or token.revoked_at is not None:
                return token, False
            token.used_at = at
            conn.execute("UPDATE refresh_tokens SET data = ? WHERE id = ?", (_dumps(token), token.id))
            return token, True

        return await self._write(op)

    def _revoke(self, where: str, value: str, at: float) -> Callable[[sqlite3.Connection], int]:
        def op(conn: sqlite3.Connection) -> int:
            sql = (
                f"UPDATE refresh_tokens SET data = json_set(data, '$.revoked_at', ?) "  # noqa: S608
                f"WHERE {where} = ? AND json_extract(data, '$.revoked_at') IS NULL"
            )
            return conn.execute(sql, (at, value)).rowcount

        return op

    async def revoke_refresh_family(self, family_id: str, at: float) -> int:
        return await self._write(self._revoke("family_id", family_id, at))

    async def revoke_user_refresh_tokens(self, user_id: str, at: float) -> int:
        return await self._write(self._revoke("user_id", user_id, at))

    # -- API keys ----------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> None:
        row = (key.id, key.user_id, key.key_hash, _dumps(key))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO api_keys (id, user_id, key_hash, data) VALUES (?, ?, ?, ?)", row
            )
        )

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM api_keys WHERE user_id = ? ORDER BY id", (user_id,)
            ).fetchall()
        )
        return [load(ApiKey, json.loads(r[0])) for r in rows]

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT data FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
        )
        return load(ApiKey, json.loads(row[0])) if row else None

    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM api_keys WHERE id = ? AND user_id = ?", (key_id, user_id))
            return cur.rowcount > 0

        return await self._write(op)

    async def touch_api_key(self, key_id: str, at: float) -> None:
        await self._write(
            lambda conn: conn.execute(
                "UPDATE api_keys SET data = json_set(data, '$.last_used_at', ?) WHERE id = ?", (at, key_id)
            )
        )

    # -- invites -----------------------------------------------------------------------
    async def create_invite(self, invite: Invite) -> None:
        row = (invite.id, invite.team_id, invite.token_hash, invite.created_at, _dumps(invite))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO invites (id, team_id, token_hash, created_at, data) VALUES (?, ?, ?, ?, ?)", row
            )
        )

    async def list_invites(self, team_id: str) -> list[Invite]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM invites WHERE team_id = ? ORDER BY created_at DESC, id DESC", (team_id,)
            ).fetchall()
        )
        return [load(Invite, json.loads(r[0])) for r in rows]

    async def get_invite_by_hash(self, token_hash: str) -> Invite | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM invites WHERE token_hash = ?", (token_hash,)
            ).fetchone()
        )
        return load(Invite, json.loads(row[0])) if row else None

    async def use_invite(self, token_hash: str, user_id: str, at: float) -> Invite | None:
        def op(conn: sqlite3.Connection) -> Invite | None:
            row = conn.execute("SELECT data FROM invites WHERE token_hash = ?", (token_hash,)).fetchone()
            if not row:
                return None
            invite = load(Invite, json.loads(row[0]))
            if invite.used_at is not None or invite.expires_at <= at:
                return None
            invite.used_at, invite.used_by = at, user_id
            conn.execute("UPDATE invites SET data = ? WHERE id = ?", (_dumps(invite), invite.id))
            return invite

        return await self._write(op)

    async def delete_invite(self, team_id: str, invite_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM invites WHERE id = ? AND team_id = ?", (invite_id, team_id))
            return cur.rowcount > 0

        return await self._write(op)

    # -- agents ------------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        row = (agent.id, agent.team_id, agent.name, _dumps(agent))
        await self._write(
            lambda conn: conn.execute("INSERT INTO agents (id, team_id, name, data) VALUES (?, ?, ?, ?)", row)
        )

    async def get_agent(self, team_id: str, agent_id: str) -> Agent | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM agents WHERE id = ? AND team_id = ?", (agent_id, team_id)
            ).fetchone()
        )
        return load(Agent, json.loads(row[0])) if row else None

    async def list_agents(self, team_id: str) -> list[Agent]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM agents WHERE team_id = ? ORDER BY name, id", (team_id,)
            ).fetchall()
        )
        return [load(Agent, json.loads(r[0])) for r in rows]

    async def update_agent(self, team_id: str, agent_id: str, changes: Mapping[str, Any]) -> Agent | None:
        updates = check_agent_changes(changes)

        def op(conn: sqlite3.Connection) -> Agent | None:
            row = conn.execute(
                "SELECT data FROM agents WHERE id = ? AND team_id = ?", (agent_id, team_id)
            ).fetchone()
            if not row:
                return None
            agent = load(Agent, {**json.loads(row[0]), **updates})
            conn.execute(
                "UPDATE agents SET name = ?, data = ? WHERE id = ?", (agent.name, _dumps(agent), agent_id)
            )
            return agent

        return await self._write(op)

    async def delete_agent(self, team_id: str, agent_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM agents WHERE id = ? AND team_id = ?", (agent_id, team_id))
            if cur.rowcount == 0:
                return False
            conn.execute("DELETE FROM agent_avatars WHERE agent_id = ? AND team_id = ?", (agent_id, team_id))
            return True

        return await self._write(op)

    async def put_agent_avatar(self, avatar: AgentAvatar) -> None:
        row = (avatar.agent_id, avatar.team_id, avatar.content_type, avatar.data)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO agent_avatars (agent_id, team_id, content_type, image) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(agent_id) DO UPDATE SET team_id = excluded.team_id, "
                "content_type = excluded.content_type, image = excluded.image",
                row,
            )
        )

    async def get_agent_avatar(self, team_id: str, agent_id: str) -> AgentAvatar | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT content_type, image FROM agent_avatars WHERE agent_id = ? AND team_id = ?",
                (agent_id, team_id),
            ).fetchone()
        )
        if not row:
            return None
        return AgentAvatar(agent_id=agent_id, team_id=team_id, content_type=row[0], data=bytes(row[1]))

    # -- error log ---------------------------------------------------------------------
    async def add_error(self, entry: ErrorLogEntry, *, keep: int) -> None:
        row = (entry.id, entry.created_at, entry.team_id, _dumps(entry))

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO error_logs (id, created_at, team_id, data) VALUES (?, ?, ?, ?)", row)
            conn.execute(
                "DELETE FROM error_logs WHERE team_id IS ? AND id NOT IN (SELECT id FROM error_logs "
                "WHERE team_id IS ? ORDER BY created_at DESC, id DESC LIMIT ?)",
                (entry.team_id, entry.team_id, keep),
            )

        await self._write(op)

    async def list_errors(self, *, team_id: str | None, limit: int) -> list[ErrorLogEntry]:
        sql = "SELECT data FROM error_logs"
        params: list[Any] = []
        if team_id is not None:
            sql += " WHERE team_id = ?"
            params.append(team_id)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [load(ErrorLogEntry, json.loads(r[0])) for r in rows]
