"""SQL access for webhook endpoints, the events kept for them, and delivery progress."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.models import DeliveryRow, EventRow, WebhookEndpoint


async def endpoints_page(
    session: AsyncSession, org_id: str, limit: int, offset: int
) -> tuple[list[WebhookEndpoint], int]:
    query = select(WebhookEndpoint).filter_by(org_id=org_id, deleted_at=None)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    row = await session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.org_id != org_id or row.deleted_at is not None:
        return None
    return row


async def live_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    """Endpoints that take deliveries: neither deleted nor disabled."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.deleted_at.is_(None),
        WebhookEndpoint.disabled_at.is_(None),
    )
    return list(await session.scalars(query))


def _insert(session: AsyncSession, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on either engine: recording twice is harmless."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


async def record_events(
    session: AsyncSession, events: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    """Keep events and their deliveries; ones already kept (a second mover, a retry) stay as
    they are."""
    if events:
        await session.execute(_insert(session, EventRow).values(events).on_conflict_do_nothing())
    if deliveries:
        statement = _insert(session, DeliveryRow).values(deliveries).on_conflict_do_nothing()
        await session.execute(statement)


def _due(now: datetime) -> tuple[Any, ...]:
    return (
        DeliveryRow.state == "pending",
        DeliveryRow.next_attempt_at <= now,
        or_(DeliveryRow.leased_until.is_(None), DeliveryRow.leased_until < now),
    )


async def due_endpoints(session: AsyncSession, now: datetime) -> list[str]:
    """Endpoints with a delivery to attempt now."""
    query = select(DeliveryRow.endpoint_id).where(*_due(now)).distinct()
    return list(await session.scalars(query))


async def claim_due(
    session: AsyncSession, endpoint_id: str, now: datetime, lease: timedelta, limit: int
) -> list[tuple[DeliveryRow, EventRow, WebhookEndpoint]]:
    """Take up to `limit` of an endpoint's due deliveries for `lease`, oldest change first, so
    two workers never send the same attempt (a lease that runs out is taken again: at least
    once). A delivery waits while an earlier event about the same hold or appointment is still
    pending for this endpoint, so each subject's events arrive in the order of its changes."""
    earlier = aliased(DeliveryRow)
    earlier_pending = select(earlier.event_id).where(
        earlier.endpoint_id == DeliveryRow.endpoint_id,
        earlier.subject_id == DeliveryRow.subject_id,
        earlier.state == "pending",
        earlier.sequence < DeliveryRow.sequence,
    )
    candidates = (
        select(DeliveryRow.event_id)
        .where(DeliveryRow.endpoint_id == endpoint_id, *_due(now), ~earlier_pending.exists())
        .order_by(DeliveryRow.sequence)
        .limit(limit)
    )
    claimed = []
    for event_id in list(await session.scalars(candidates)):
        # The conditions again: a concurrent claimer that got there first makes this a no-op.
        taken = await session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.event_id == event_id, DeliveryRow.endpoint_id == endpoint_id)
            .where(*_due(now))
            .values(leased_until=now + lease)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            claimed.append(await _delivery(session, event_id, endpoint_id))
    return claimed


async def _delivery(
    session: AsyncSession, event_id: str, endpoint_id: str
) -> tuple[DeliveryRow, EventRow, WebhookEndpoint]:
    delivery = await session.get(DeliveryRow, (event_id, endpoint_id))
    event = await session.get(EventRow, event_id)
    target = await session.get(WebhookEndpoint, endpoint_id)
    assert delivery is not None and event is not None and target is not None
    return delivery, event, target


async def events_page(
    session: AsyncSession, org_id: str, event_type: str | None, limit: int, offset: int
) -> tuple[list[EventRow], int]:
    query = select(EventRow).filter_by(org_id=org_id)
    if event_type is not None:
        query = query.filter_by(type=event_type)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(EventRow.created_at.desc(), EventRow.sequence.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def trim_events(session: AsyncSession, older_than: datetime) -> int:
    """Forget events (and their deliveries) older than the retention period."""
    old = select(EventRow.id).where(EventRow.created_at < older_than)
    await session.execute(delete(DeliveryRow).where(DeliveryRow.event_id.in_(old)))
    result = await session.execute(delete(EventRow).where(EventRow.created_at < older_than))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def retry_backlog(session: AsyncSession) -> dict[str, int]:
    """Pending deliveries that have failed at least once, per endpoint."""
    query = (
        select(DeliveryRow.endpoint_id, func.count())
        .where(DeliveryRow.state == "pending", DeliveryRow.attempts > 0)
        .group_by(DeliveryRow.endpoint_id)
    )
    return {endpoint_id: int(count) for endpoint_id, count in await session.execute(query)}


async def disabled_count(session: AsyncSession) -> int:
    query = (
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.disabled_at.is_not(None), WebhookEndpoint.deleted_at.is_(None))
    )
    return int(await session.scalar(query) or 0)
