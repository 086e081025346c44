"""Delivering events to webhook endpoints: signed, bounded, retried, at least once.

Each attempt is a POST of the event's body (the same bytes every time) signed per the Standard
Webhooks specification with a fresh timestamp. A 2xx within the timeout is a delivery; anything
else is retried with the same id and body: first within 5 s, then with exponential backoff, for
`HOLDS_WEBHOOK_RETRY_FOR_SECONDS` (26 h by default). Redirects are not followed, and at most a
few KiB of a response are read. Each endpoint has at most `HOLDS_WEBHOOK_MAX_IN_FLIGHT_PER_
ENDPOINT` attempts in flight per worker, so one slow receiver cannot hold up the others. An
endpoint that has failed without a success for `HOLDS_WEBHOOK_DISABLE_AFTER_SECONDS` is disabled
and says so (its `disabled_at` and `disabled_reason`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.db import webhooks_repo
from app.db.models import DeliveryRow, EventRow, WebhookEndpoint
from app.events import outbox as payloads
from app.webhooks.targets import CheckedResolver, TargetRefused, check_url, describe
from workers.context import WorkerContext

log = logging.getLogger("holds.worker.webhooks")
POLL_SECONDS = 0.25
RESPONSE_READ_LIMIT = 4096
# Seconds before retry n (1-based); the last one repeats until the retry period is over.
RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,` and the base64 HMAC-SHA256 of
    `id.timestamp.body` under the secret (base64 after its `whsec_` prefix)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    return timedelta(seconds=RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1])


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None  # the receiver's HTTP status, None when there was no answer
    error: str | None  # why it failed, None for a delivery

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Ended:
    """An attempt that has ended, waiting to be recorded."""

    event: EventRow
    endpoint_id: str
    outcome: Outcome


class Deliverer:
    """Claims due deliveries endpoint by endpoint and sends them, within per-endpoint bounds.

    Work goes in cycles of one transaction: record every attempt that ended since the last
    cycle, then claim what is due in the room its endpoint has. One commit a cycle, however
    many attempts it covers, so the database's commit time paces the cycles, not each
    delivery. The bound counts requests the receiver is answering; a subject's next event is
    not claimed before its earlier one is recorded, because claiming skips any delivery with
    an earlier one of its subject still pending."""

    def __init__(self, worker: WorkerContext, wake: asyncio.Event) -> None:
        self.worker = worker
        self.wake = wake  # set when there may be more to do: new events, or an attempt ended
        self.settings: Settings = worker.settings
        self.in_flight: dict[str, int] = {}
        self.ended: list[Ended] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        # Longer than any attempt takes; a worker killed mid-attempt leaves it to another then.
        self.lease = timedelta(seconds=2 * self.settings.webhook_timeout_seconds + 5)

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            resolver = CheckedResolver(self.settings.webhook_allow_private_targets)
            # No pool-wide limit: each endpoint's own bound is the limit that matters.
            connector = aiohttp.TCPConnector(resolver=resolver, limit=0, force_close=True)
            timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    async def close(self) -> None:
        """Stop at once: an attempt cut short, or ended but not yet recorded, stays leased and
        is taken again when its lease ends (at least once), so nothing waits here for a slow
        receiver."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def cycle(self) -> int:
        """Record the attempts that ended and start every due attempt there is room for, in
        one transaction; returns how many started."""
        ended, self.ended = self.ended, []
        now = datetime.now(UTC)
        try:
            async with self.worker.sessions.begin() as session:
                labels = await self._record_all(session, ended, now)
                claimed = await self._claim(session, now)
        except BaseException:
            self.ended = ended + self.ended  # still leased: recorded by a later cycle
            raise
        for label in labels:
            if label is not None:
                metrics.WEBHOOK_DELIVERIES.labels(label).inc()
        for event, endpoint in claimed:  # leased and committed: now send
            self._start(event, endpoint)
        return len(claimed)

    async def _claim(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[EventRow, WebhookEndpoint]]:
        limit = self.settings.webhook_max_in_flight_per_endpoint
        claimed: list[tuple[EventRow, WebhookEndpoint]] = []
        for endpoint_id in await webhooks_repo.due_endpoints(session, now):
            room = limit - self.in_flight.get(endpoint_id, 0)
            if room <= 0:
                continue
            events = await webhooks_repo.claim_due(session, endpoint_id, now, self.lease, room)
            endpoint = await session.get(WebhookEndpoint, endpoint_id)
            assert endpoint is not None  # a delivery's endpoint row is never deleted
            claimed += [(event, endpoint) for event in events]
        return claimed

    def _start(self, event: EventRow, endpoint: WebhookEndpoint) -> None:
        self.in_flight[endpoint.id] = self.in_flight.get(endpoint.id, 0) + 1
        task = asyncio.create_task(self._attempt(event, endpoint))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _attempt(self, event: EventRow, endpoint: WebhookEndpoint) -> None:
        try:
            outcome = await self.send(event, endpoint)
        finally:
            self.in_flight[endpoint.id] -= 1
        self.ended.append(Ended(event, endpoint.id, outcome))
        self.wake.set()

    async def send(self, event: EventRow, endpoint: WebhookEndpoint) -> Outcome:
        """One signed POST of the event to the endpoint."""
        body = payloads.body(event.id, event.type, event.created_at, event.data)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, event.id, timestamp, body),
        }
        try:
            await self._check_literal_address(endpoint.url)
            async with self.http().post(
                endpoint.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(RESPONSE_READ_LIMIT)
                error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
                return Outcome(response.status, error)
        except TimeoutError:
            return Outcome(None, "no answer within the timeout")
        except (aiohttp.ClientError, OSError, TargetRefused) as exc:
            return Outcome(None, describe(exc))

    async def _check_literal_address(self, url: str) -> None:
        """Names are checked by the resolver as they are connected to; an address in the url
        itself reaches no resolver, so it is checked here."""
        host = urlsplit(url).hostname or ""
        if host.replace(".", "").isdigit() or ":" in host:
            await check_url(url, allow_private=self.settings.webhook_allow_private_targets)

    async def _record_all(
        self, session: AsyncSession, ended: list[Ended], now: datetime
    ) -> list[str | None]:
        rows = await webhooks_repo.deliveries(
            session, [(attempt.event.id, attempt.endpoint_id) for attempt in ended]
        )
        labels = []
        for attempt in ended:
            row = rows.get((attempt.event.id, attempt.endpoint_id))
            target = await session.get(WebhookEndpoint, attempt.endpoint_id)  # one read each
            labels.append(self._record(row, target, attempt, now))
        return labels

    def _record(
        self, row: DeliveryRow | None, target: WebhookEndpoint | None, attempt: Ended,
        now: datetime,
    ) -> str | None:  # fmt: skip
        """The attempt's outcome on its delivery; its metrics label, or None when another
        worker has finished the delivery meanwhile."""
        if row is None or target is None or row.state != "pending":
            return None
        outcome = attempt.outcome
        row.attempts += 1
        row.last_status, row.last_error, row.leased_until = outcome.status, outcome.error, None
        if outcome.delivered:
            row.state, row.delivered_at, target.failing_since = "delivered", now, None
            lag = (now - attempt.event.created_at).total_seconds()
            metrics.WEBHOOK_DELIVERY_LAG.observe(lag)
        else:
            self._schedule_retry(row, attempt.event, target, now)
        return _outcome_label(outcome, row.state)

    def _schedule_retry(
        self, row: DeliveryRow, event: EventRow, target: WebhookEndpoint, now: datetime
    ) -> None:
        row.next_attempt_at = now + retry_delay(row.attempts)
        retry_for = timedelta(seconds=self.settings.webhook_retry_for_seconds)
        if row.next_attempt_at > event.created_at + retry_for:
            row.state = "failed"
        target.failing_since = target.failing_since or now
        disable_after = timedelta(seconds=self.settings.webhook_disable_after_seconds)
        if target.disabled_at is None and now - target.failing_since >= disable_after:
            target.disabled_at = now
            target.disabled_reason = (
                f"Every delivery since {target.failing_since:%Y-%m-%dT%H:%M:%SZ} failed "
                f"(last: {row.last_error})."
            )
            log.warning("webhook endpoint disabled", extra={"endpoint_id": target.id})


def _outcome_label(outcome: Outcome, state: str) -> str:
    if outcome.delivered:
        return "delivered"
    return "failed" if state == "failed" else "retrying"


async def deliver(deliverer: Deliverer) -> None:
    """A cycle four times a second, and at once when new events arrive or an attempt ends
    (so an endpoint's bound and the commit time, not this loop, set the pace)."""
    while True:
        deliverer.wake.clear()
        try:
            await deliverer.cycle()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not record or claim deliveries", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deliverer.wake.wait(), POLL_SECONDS)


async def report(worker: WorkerContext) -> None:
    """Retry backlog per endpoint and disabled endpoints, for the metrics."""
    async with worker.sessions() as session:
        backlog = await webhooks_repo.retry_backlog(session)
        disabled = await webhooks_repo.disabled_count(session)
    metrics.WEBHOOK_RETRY_BACKLOG.clear()
    for endpoint_id, count in backlog.items():
        metrics.WEBHOOK_RETRY_BACKLOG.labels(endpoint_id).set(count)
    metrics.WEBHOOK_ENDPOINTS_DISABLED.set(disabled)


async def trim(worker: WorkerContext) -> int:
    """Forget events older than the retention period."""
    older_than = datetime.now(UTC) - timedelta(days=worker.settings.event_retention_days)
    async with worker.sessions.begin() as session:
        return await webhooks_repo.trim_events(session, older_than)
