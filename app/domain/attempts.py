"""The current request's Idempotency-Key, as the hold and appointment operations see it.

A write made under an Idempotency-Key is recorded, in the same script as the change, with the
attempt's `token`, so a retry whose first answer was lost (a 503, a killed process, a dropped
connection) finds the change it made and answers with it instead of acting again. The web layer
sets the attempt; the domain passes the token to the store's scripts and says when it replayed.
"""

from __future__ import annotations

import contextvars
import hashlib
from dataclasses import dataclass


@dataclass(slots=True)
class Attempt:
    # Stands for (API key, method, path, Idempotency-Key, body): the same request, retried.
    token: str
    # An earlier attempt of this request may still be running: report what it did, if it
    # committed, and otherwise refuse with 409 idempotency_key_in_use rather than act.
    recover_only: bool = False
    # Set when the operation found its change already made by an earlier attempt.
    replayed: bool = False


current: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("attempt", default=None)


def token() -> str:
    """The current attempt's token, or '' for a request without an Idempotency-Key."""
    attempt = current.get()
    return attempt.token if attempt is not None else ""


def recover_only() -> bool:
    attempt = current.get()
    return attempt is not None and attempt.recover_only


def mark_replayed() -> None:
    attempt = current.get()
    if attempt is not None:
        attempt.replayed = True


def derived_uuid_hex(seed: str) -> str:
    """32 hex digits of a version-4-shaped UUID that depends only on `seed` (and the token)."""
    digest = bytearray(hashlib.sha256(f"{token()}|{seed}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()
