"""Registering, listing and removing webhook endpoints: shared by the API and the CLI."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app import events, ids
from app.db import models, webhooks_repo
from app.webhooks.targets import check_url


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def register(
    session: AsyncSession,
    org_id: str,
    url: str,
    event_types: Sequence[str] | None,
    description: str | None,
    *,
    allow_private: bool,
) -> models.WebhookEndpoint:
    """A new endpoint for every event type, or for those named; TargetRefused for a url that
    webhooks may not reach."""
    await check_url(url, allow_private=allow_private)
    endpoint = models.WebhookEndpoint(
        id=ids.new_id("whe"),
        org_id=org_id,
        url=url,
        events=list(event_types or events.TYPES),
        description=description,
        secret=new_secret(),
        created_at=datetime.now(UTC),
    )
    session.add(endpoint)
    return endpoint


async def remove(session: AsyncSession, org_id: str, endpoint_id: str) -> bool:
    """Stop sending to an endpoint; its deliveries' history stays. False when there is none."""
    found = None
    if ids.is_valid("whe", endpoint_id):
        found = await webhooks_repo.endpoint(session, org_id, endpoint_id)
    if found is None:
        return False
    found.deleted_at = datetime.now(UTC)
    return True
