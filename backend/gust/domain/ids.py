"""Time-ordered, URL-safe ids shared by every store (no Mongo ObjectIds)."""

from __future__ import annotations

import base64
import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET.encode())
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def new_id() -> str:
    """Return a 26-char id: 48-bit millisecond time + 80 random bits, monotonic per process."""
    global _last_ms, _last_rand
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = secrets.randbits(80)
        _last_ms, _last_rand = ms, rand
    value = (ms << 80) | (rand & ((1 << 80) - 1))
    # 130 bits as 26 base32 digits, most significant first: shifted to 160 bits, base64's
    # C encoder does the digits and a translation maps RFC 4648's alphabet to ours.
    return base64.b32encode((value << 30).to_bytes(20, "big"))[:26].translate(_TO_CROCKFORD).decode()


def new_token(nbytes: int = 32) -> str:
    """Return an unguessable URL-safe token."""
    return secrets.token_urlsafe(nbytes)


def now() -> float:
    """Wall-clock time as epoch seconds; stored as a float in every store."""
    return time.time()
