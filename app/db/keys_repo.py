"""SQL access for API keys. Only a key's SHA-256 is stored; the secret is shown once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models

SCOPES = (
    "write_holds",
    "read_availability",
    "read_appointment_types",
    "read_clinicians",
    "read_locations",
    "read_appointments",
    "write_appointments",
    "read_patients",
    "write_patients",
    "manage_webhooks",
)
PREFIX_LENGTH = 16


class KeyCommandError(Exception):
    """A key command that cannot be carried out; the message says why."""


@dataclass(frozen=True, slots=True)
class NewKey:
    row: models.ApiKey
    secret: str


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    session: AsyncSession, org_id: str, scopes: list[str], name: str | None, test: bool
) -> NewKey:
    if await session.get(models.Organization, org_id) is None:
        raise KeyCommandError(f"no organisation {org_id}; load a catalog that defines it first")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise KeyCommandError(
            f"unknown scope {unknown[0]!r}" if unknown else "name at least one scope"
        )
    secret = f"pk_{'test' if test else 'live'}_{secrets.token_urlsafe(32)}"
    row = models.ApiKey(
        id=f"key_{uuid.uuid4()}",
        org_id=org_id,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_key(secret),
        scopes=sorted(set(scopes), key=SCOPES.index),
        is_test=test,
    )
    session.add(row)
    return NewKey(row, secret)


async def list_keys(session: AsyncSession, org_id: str | None) -> list[models.ApiKey]:
    query = select(models.ApiKey).order_by(models.ApiKey.created_at)
    if org_id:
        query = query.filter_by(org_id=org_id)
    return list(await session.scalars(query))


async def revoke_key(session: AsyncSession, key_or_prefix: str) -> models.ApiKey:
    """Revoke by the whole key or by its 16-character prefix (which must name one key)."""
    if len(key_or_prefix) > PREFIX_LENGTH:
        matches = list(
            await session.scalars(select(models.ApiKey).filter_by(key_hash=hash_key(key_or_prefix)))
        )
    else:
        matches = list(await session.scalars(select(models.ApiKey).filter_by(prefix=key_or_prefix)))
    if not matches:
        raise KeyCommandError("no key matches that key or prefix")
    if len(matches) > 1:
        raise KeyCommandError("that prefix matches several keys; give the whole key")
    row = matches[0]
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


async def find_by_hash(session: AsyncSession, key_hash: str) -> models.ApiKey | None:
    return await session.scalar(select(models.ApiKey).filter_by(key_hash=key_hash))
