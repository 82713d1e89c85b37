"""Encryption at rest of small secrets (agent webhook tokens) with a key derived from
AUTH_SECRET_KEY: HKDF-SHA256 to a 256-bit key, AES-GCM with a random nonce per value.

Changing AUTH_SECRET_KEY makes stored secrets unreadable: they must be entered again.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (another key, or tampered with)."""


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 256-bit key of its own for each purpose: keys can never be confused with each
    other or with the access-token signing key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"gust/{purpose}/{VERSION}".encode()
    ).derive(secret_key.encode("utf-8"))


class SecretBox:
    def __init__(self, secret_key: str, purpose: str) -> None:
        self._aead = AESGCM(derive_key(secret_key, purpose))

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """`context` (e.g. the owning record's id) is authenticated: a value copied to
        another record does not decrypt there."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, value: str, *, context: str) -> str:
        version, _, body = value.partition(":")
        if version != VERSION:
            raise SecretUnreadable(f"unknown secret format {version!r}")
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SecretUnreadable("secret cannot be decrypted with this key") from None
        return plain.decode("utf-8")
