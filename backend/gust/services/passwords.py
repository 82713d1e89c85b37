"""Password rules and bcrypt hashing (run off the event loop: a hash costs ~0.25 s)."""

from __future__ import annotations

import asyncio

import bcrypt

from gust.domain.errors import ValidationError

MIN_CHARS = 8
MAX_CHARS = 128
BCRYPT_MAX_BYTES = 72  # bcrypt ignores everything after 72 bytes: refuse rather than truncate


def check_password_rules(password: str) -> None:
    """Raise ValidationError (422) for a password Gust will not store."""
    if len(password) < MIN_CHARS:
        raise ValidationError(f"password must be at least {MIN_CHARS} characters", field="password")
    if len(password) > MAX_CHARS:
        raise ValidationError(f"password must be at most {MAX_CHARS} characters", field="password")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise ValidationError(
            f"password must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 "
            "(characters outside ASCII take 2-4 bytes each)",
            field="password",
        )


class PasswordHasher:
    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds
        # Verified against when the account does not exist, so both paths cost the same.
        self._dummy = bcrypt.hashpw(b"gust-timing-equaliser", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        salt = bcrypt.gensalt(self.rounds)
        digest = await asyncio.to_thread(bcrypt.hashpw, password.encode("utf-8"), salt)
        return digest.decode("ascii")

    async def verify(self, password: str, hashed: str | None) -> bool:
        raw = password.encode("utf-8")
        if hashed is None or len(raw) > BCRYPT_MAX_BYTES:
            await asyncio.to_thread(bcrypt.checkpw, b"x", self._dummy)
            return False
        return await asyncio.to_thread(bcrypt.checkpw, raw, hashed.encode("ascii"))
