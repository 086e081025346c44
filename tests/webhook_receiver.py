"""A real webhook receiver on loopback that verifies every delivery with the Standard Webhooks
reference library, and can be told to fail, stall or go away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

from app.embedded_redis import free_port

# How the receiver answers the n-th request (0-based): a status, or a delay in seconds first.
Behaviour = Callable[[int], tuple[int, float]]


def always_ok(_: int) -> tuple[int, float]:
    return 200, 0.0


@dataclass
class Delivery:
    webhook_id: str
    body: bytes
    event: dict[str, Any]
    received_at: float


@dataclass
class Receiver:
    secret: str = ""  # set once the endpoint exists
    behaviour: Behaviour = always_ok
    port: int = field(default_factory=free_port)
    attempts: list[Delivery] = field(default_factory=list)  # every request, verified
    answered_ok: set[str] = field(default_factory=set)  # webhook-ids answered 2xx
    in_progress: int = 0  # requests being answered now
    most_in_progress: int = 0  # the most ever answered at once
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def delivered(self) -> list[Delivery]:
        """Attempts answered 2xx, one per webhook-id (receivers de-duplicate by it)."""
        seen: dict[str, Delivery] = {}
        for attempt in self.attempts:
            if attempt.webhook_id in self.answered_ok:
                seen.setdefault(attempt.webhook_id, attempt)
        return list(seen.values())

    def types(self) -> list[str]:
        return [d.event["type"] for d in self.delivered]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        event = Webhook(self.secret).verify(body, headers)  # raises on a bad signature
        assert isinstance(event, dict) and event["id"] == headers["webhook-id"]
        n = len(self.attempts)
        self.attempts.append(Delivery(headers["webhook-id"], body, event, time.monotonic()))
        status, delay = self.behaviour(n)
        self.in_progress += 1
        self.most_in_progress = max(self.most_in_progress, self.in_progress)
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_progress -= 1
        gone = request.transport is None or request.transport.is_closing()
        if 200 <= status < 300 and not gone:  # a sender that gave up never saw this 2xx
            self.answered_ok.add(headers["webhook-id"])
        return web.Response(status=status, text=json.dumps({"ok": status < 300}))

    async def wait_for(self, count: int, within: float = 15.0) -> list[Delivery]:
        """The first `count` distinct deliveries, or fail if they do not arrive in time."""
        deadline = time.monotonic() + within
        while len(self.delivered) < count:
            if time.monotonic() > deadline:
                got = [d.event["type"] for d in self.delivered]
                raise AssertionError(f"{len(got)} of {count} deliveries within {within} s: {got}")
            await asyncio.sleep(0.05)
        return self.delivered
