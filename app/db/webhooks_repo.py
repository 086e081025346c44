"""SQL access for webhook endpoints, the events kept for them, and delivery progress."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, tuple_, update
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
    # A list of parameters, not .values(rows): the statement is compiled once and cached,
    # where a multi-row VALUES clause is compiled anew for every batch.
    if events:
        await session.execute(_insert(session, EventRow).on_conflict_do_nothing(), events)
    if deliveries:
        await session.execute(_insert(session, DeliveryRow).on_conflict_do_nothing(), deliveries)


async def latest_events(session: AsyncSession, subject_ids: Iterable[str]) -> dict[str, EventRow]:
    """The latest event kept of each of these holds or appointments that has one."""
    query = select(EventRow).where(EventRow.subject_id.in_(list(subject_ids)))
    latest: dict[str, EventRow] = {}
    for row in await session.scalars(query.order_by(EventRow.sequence)):
        latest[row.subject_id] = row
    return latest


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
) -> list[EventRow]:
    """Take up to `limit` of an endpoint's due deliveries for `lease`, oldest change first, so
    two workers never send the same attempt (a lease that runs out is taken again: at least
    once); returns their events in that order. A delivery waits while an earlier event about
    the same hold or appointment is still pending for this endpoint, so each subject's events
    arrive in the order of its changes."""
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
    event_ids = list(await session.scalars(candidates))
    if not event_ids:
        return []
    # The conditions again: what a concurrent claimer took first is left out.
    taken = await session.scalars(
        update(DeliveryRow)
        .where(DeliveryRow.endpoint_id == endpoint_id, DeliveryRow.event_id.in_(event_ids))
        .where(*_due(now))
        .values(leased_until=now + lease)
        .returning(DeliveryRow.event_id)
        .execution_options(synchronize_session=False)
    )
    claimed = list(taken)
    events = await session.scalars(
        select(EventRow).where(EventRow.id.in_(claimed)).order_by(EventRow.sequence)
    )
    return list(events)


async def deliveries(
    session: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], DeliveryRow]:
    """These deliveries, by (event id, endpoint id), in one query."""
    if not keys:
        return {}
    query = select(DeliveryRow).where(
        tuple_(DeliveryRow.event_id, DeliveryRow.endpoint_id).in_(keys)
    )
    return {(row.event_id, row.endpoint_id): row for row in await session.scalars(query)}


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
