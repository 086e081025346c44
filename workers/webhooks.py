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


class Deliverer:
    """Claims due deliveries endpoint by endpoint and sends them, within per-endpoint bounds."""

    def __init__(self, worker: WorkerContext, wake: asyncio.Event) -> None:
        self.worker = worker
        self.wake = wake  # set when there may be more to start: new events, or room freed
        self.settings: Settings = worker.settings
        self.in_flight: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        # Longer than any attempt takes; a worker killed mid-attempt leaves it to another then.
        self.lease = timedelta(seconds=2 * self.settings.webhook_timeout_seconds + 5)

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            resolver = CheckedResolver(self.settings.webhook_allow_private_targets)
            connector = aiohttp.TCPConnector(resolver=resolver, limit=200, force_close=True)
            timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_seconds)
            self._http = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._http

    async def close(self) -> None:
        """Stop at once: an attempt cut short is leased, and taken again when its lease ends
        (at least once), so nothing waits here for a slow receiver."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def start_due(self) -> int:
        """Start every due attempt there is room for; returns how many started."""
        limit = self.settings.webhook_max_in_flight_per_endpoint
        now = datetime.now(UTC)
        claimed: list[tuple[DeliveryRow, EventRow, WebhookEndpoint]] = []
        async with self.worker.sessions() as session:  # a read: no write lock while idle
            due = await webhooks_repo.due_endpoints(session, now)
        if not due:
            return 0
        async with self.worker.sessions.begin() as session:
            for endpoint_id in due:
                room = limit - self.in_flight.get(endpoint_id, 0)
                if room > 0:
                    claimed += await webhooks_repo.claim_due(
                        session, endpoint_id, now, self.lease, room
                    )
        for delivery, event, endpoint in claimed:  # leased and committed: now send
            self._start(delivery, event, endpoint)
        return len(claimed)

    def _start(self, delivery: DeliveryRow, event: EventRow, endpoint: WebhookEndpoint) -> None:
        self.in_flight[endpoint.id] = self.in_flight.get(endpoint.id, 0) + 1
        task = asyncio.create_task(self._attempt(delivery, event, endpoint))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _attempt(
        self, delivery: DeliveryRow, event: EventRow, endpoint: WebhookEndpoint
    ) -> None:
        try:
            outcome = await self.send(event, endpoint)
            await self._record(delivery, event, endpoint, outcome)
        except (SQLAlchemyError, OSError) as exc:  # the lease runs out and it is tried again
            log.warning("could not record a delivery", extra={"error": type(exc).__name__})
        finally:
            self.in_flight[endpoint.id] -= 1
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

    async def _record(
        self, delivery: DeliveryRow, event: EventRow, endpoint: WebhookEndpoint, outcome: Outcome
    ) -> None:
        now = datetime.now(UTC)
        async with self.worker.sessions.begin() as session:
            row = await session.get(DeliveryRow, (delivery.event_id, delivery.endpoint_id))
            target = await session.get(WebhookEndpoint, endpoint.id)
            if row is None or target is None or row.state != "pending":
                return
            row.attempts += 1
            row.last_status, row.last_error, row.leased_until = outcome.status, outcome.error, None
            if outcome.delivered:
                row.state, row.delivered_at, target.failing_since = "delivered", now, None
                metrics.WEBHOOK_DELIVERY_LAG.observe((now - event.created_at).total_seconds())
            else:
                self._schedule_retry(row, event, target, now)
        metrics.WEBHOOK_DELIVERIES.labels(_outcome_label(outcome, row.state)).inc()

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
    """Start due attempts four times a second, and at once when new events arrive or an
    attempt ends (so an endpoint's bound, not this loop, sets its pace)."""
    while True:
        deliverer.wake.clear()
        try:
            await deliverer.start_due()
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not claim deliveries", extra={"error": type(exc).__name__})
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
