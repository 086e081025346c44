"""A hold's client_secret: what a booking page's browser holds instead of an API key.

It is random, shown only when the hold is created, and kept only as its SHA-256 hash in the
hold's record, so a copy of Redis does not give it away. It grants reading that one hold's
status stream and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new() -> str:
    """43 URL-safe characters: 256 random bits."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str | None) -> bool:
    """Whether `secret` is the one whose digest the record keeps (in constant time)."""
    if not stored_digest:
        return False
    return hmac.compare_digest(digest(secret), stored_digest)
