"""GET /holds/{id}/events: a hold's status as Server-Sent Events, for a booking page.

aiohttp's own StreamResponse is all it takes: the stream writes a few lines per change, and
owning the loop keeps the heartbeat, the expiry timer and the end of the stream in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

import orjson
from aiohttp import web

from app import client_secrets, ids
from app.domain.records import Hold
from app.errors import HoldNotFound
from app.events import FINAL_STATUSES
from app.events.outbox import hold_after, hold_payload
from app.web.auth import authorise
from app.web.cors import allow_headers
from app.web.hold_streams import StreamQueue
from app.web.middleware import REQUEST_ID
from app.web.state import HOLD_STREAMS, SETTINGS

# When the process' clock reaches expires_at before Redis' does, look again this soon.
_EXPIRY_RECHECK_SECONDS = 0.05


async def hold_events(request: web.Request) -> web.StreamResponse:
    hold_id = request.match_info["hold_id"]
    owner, limit = await _authorise(request, hold_id)
    streams = request.app[HOLD_STREAMS]
    async with streams.watch(hold_id, owner, limit) as queue:
        found = await streams.events.hold(hold_id)  # read after watching: no change is missed
        if found is None:
            raise HoldNotFound("No such hold.")
        response = web.StreamResponse(headers=_headers(request))
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the browser went away
            await _stream(request, response, queue, found[0])
    return response


async def _authorise(request: web.Request, hold_id: str) -> tuple[str, int]:
    """Who the stream counts against, and their cap: a write_holds key of the hold's
    organisation, or the hold's own client_secret. Anything else learns nothing."""
    settings = request.app[SETTINGS]
    secret = request.query.get("client_secret")
    by_key = "Authorization" in request.headers or secret is None
    principal = await authorise(request, "write_holds") if by_key else None
    found = None
    if ids.is_valid("hold", hold_id):
        found = await request.app[HOLD_STREAMS].events.hold(hold_id)
    if principal is not None:
        if found is None or found[0].org_id != principal.org_id:
            raise HoldNotFound("No such hold.")
        return f"key:{principal.key_id}", settings.streams_per_key
    if found is None or not client_secrets.matches(secret or "", found[1]):
        raise HoldNotFound("No such hold.")
    return f"hold:{hold_id}", settings.streams_per_hold


def _headers(request: web.Request) -> dict[str, str]:
    return {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # proxies must not buffer the stream
        "X-Request-Id": request[REQUEST_ID],
    } | allow_headers(request)


async def _stream(
    request: web.Request, response: web.StreamResponse, queue: StreamQueue, hold: Hold
) -> None:
    """The current state at once (and again on reconnect, whatever Last-Event-ID says), then
    every change, until a final status; a ping comment when nothing else was sent."""
    ping_seconds = request.app[SETTINGS].stream_ping_seconds
    last_id = f"{int(time.time() * 1000)}-0"
    await _send(response, hold, last_id)
    while hold.status not in FINAL_STATUSES:
        until_expiry = hold.expires_at.timestamp() - time.time()
        try:
            event = await asyncio.wait_for(queue.get(), min(ping_seconds, max(until_expiry, 0)))
        except TimeoutError:
            if until_expiry > ping_seconds:
                await response.write(b": ping\n\n")
                continue
            hold = await _after_expiry(request, hold)
            if hold.status != "active":
                await _send(response, hold, f"{int(hold.expires_at.timestamp() * 1000)}-1")
            continue
        if event is None:  # shutting down
            return
        hold, last_id = hold_after(event, hold), event.entry_id
        await _send(response, hold, last_id)


async def _after_expiry(request: web.Request, hold: Hold) -> Hold:
    """The hold once its expires_at has come, by Redis' clock (no worker needed)."""
    found = await request.app[HOLD_STREAMS].events.hold(hold.id)
    if found is None:  # its record outlived the retention period: long expired
        return dataclasses.replace(hold, status="expired")
    current = found[0]
    if current.status == "active" and current.expires_at == hold.expires_at:
        await asyncio.sleep(_EXPIRY_RECHECK_SECONDS)
    return current


async def _send(response: web.StreamResponse, hold: Hold, event_id: str) -> None:
    data = orjson.dumps(hold_payload(hold)).decode()
    await response.write(f"event: hold\nid: {event_id}\ndata: {data}\n\n".encode())
