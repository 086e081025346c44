"""Every Redis call of a request, failed in turn, gives a 503 in the error envelope, and a
retry with the same Idempotency-Key gets the outcome that committed (or makes it, once).

Each Redis command the app sends (auto-pipelined scripts, redis-py commands and pipelines)
passes through a switch that raises, on the Nth call of one request, the exception that client
really raises for that fault: error replies as each client parses them, a closed transport, a
lost connection, a timeout, or Redis gone from the Nth call on.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.web.state import PIPELINE, QUEUE, REDIS
from tests.catalog import AWAY_MONDAY
from tests.conftest import Api, MakeApi
from tests.helpers import confirm_body, hold_body

ErrorFor = Callable[[str], Exception]  # client name ('pipeline' or 'redis-py') -> exception

REPLIES = [
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "READONLY You can't write against a read only replica.",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "CLUSTERDOWN The cluster is down",
    "OOM command not allowed when used memory > 'maxmemory'.",
]


def _reply(text: str) -> ErrorFor:
    # The pipeline's hiredis reader makes every error reply a ResponseError of its text;
    # redis-py maps some (LOADING, READONLY, OOM) to classes of their own.
    def error(client: str) -> Exception:
        return ResponseError(text) if client == "pipeline" else BaseParser.parse_error(text)

    return error


KINDS: dict[str, tuple[ErrorFor, bool]] = {
    **{text.split()[0]: (_reply(text), False) for text in REPLIES},
    "closed transport": (
        lambda _: RuntimeError(
            "unable to perform operation on <TCPTransport closed=True reading=False "
            "0x7f0000000000>; the handler is closed"
        ),
        False,
    ),
    "connection lost": (lambda _: RedisConnectionError("Connection closed by server."), False),
    "reply timeout": (lambda _: RedisTimeoutError("Redis did not answer within 5 s."), False),
    "redis gone": (lambda _: RedisConnectionError("Error 111 connecting. Refused."), True),
}


class Switch:
    """Counts Redis calls while armed and fails the Nth (or every one from the Nth on)."""

    def __init__(self) -> None:
        self.armed = False
        self.calls = 0
        self.fired = 0
        self.fail_at = 0
        self.error: ErrorFor = KINDS["LOADING"][0]
        self.persistent = False

    def arm(self, fail_at: int, kind: str) -> None:
        self.error, self.persistent = KINDS[kind]
        self.armed, self.calls, self.fired, self.fail_at = True, 0, 0, fail_at

    def disarm(self) -> None:
        self.armed = False

    def check(self, client: str) -> None:
        if not self.armed:
            return
        self.calls += 1
        if self.calls == self.fail_at or (self.persistent and self.calls > self.fail_at):
            self.fired += 1
            raise self.error(client)


@pytest.fixture
async def faulty(make_api: MakeApi, monkeypatch: pytest.MonkeyPatch) -> tuple[Api, Switch]:
    api = await make_api(rate_limit_per_minute=1_000_000, max_active_holds_per_key=100_000)
    switch = Switch()
    app = api.client.server.app
    pipeline = app[PIPELINE]
    send = pipeline.execute

    async def pipelined(*args: Any) -> Any:
        switch.check("pipeline")
        return await send(*args)

    monkeypatch.setattr(pipeline, "execute", pipelined)
    for client in (app[REDIS], app[QUEUE]):
        monkeypatch.setattr(client, "execute_command", _checked(switch, client.execute_command))
    monkeypatch.setattr(Pipeline, "execute", _checked(switch, Pipeline.execute))
    return api, switch


def _checked(switch: Switch, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def checked(*args: Any, **kwargs: Any) -> Any:
        switch.check("redis-py")
        return await call(*args, **kwargs)

    return checked


@dataclass
class Call:
    method: str
    path: str
    body: Any
    status: int  # when nothing fails
    idempotency_key: str | None = None


_keys = itertools.count()


def _slots() -> Iterator[dict[str, Any]]:
    """Every half-hour slot of the test clinician's Mondays, each once."""
    day = datetime.date(2030, 7, 1)
    while True:
        if day.isoformat() == AWAY_MONDAY:
            day += datetime.timedelta(days=7)
        for hour, minute in itertools.product(range(9, 17), (0, 30)):
            yield hold_body(f"{hour:02d}:{minute:02d}", date=day.isoformat())
        day += datetime.timedelta(days=7)


_free = _slots()


def _fresh_slot() -> dict[str, Any]:
    return next(_free)


async def _hold(api: Api) -> str:
    status, body = await api.call("POST", "/holds", _fresh_slot())
    assert status == 201, body
    return str(body["data"]["id"])


async def _appointment(api: Api) -> str:
    hold_id = await _hold(api)
    status, body = await api.call("POST", f"/holds/{hold_id}/confirm", confirm_body())
    assert status == 201, body
    return str(body["data"]["id"])


def _key() -> str:
    return f"fault-{next(_keys)}"


async def _create(api: Api) -> Call:
    return Call("POST", "/holds", _fresh_slot(), 201, _key())


async def _get(api: Api) -> Call:
    return Call("GET", f"/holds/{await _hold(api)}", None, 200)


async def _release(api: Api) -> Call:
    return Call("DELETE", f"/holds/{await _hold(api)}", None, 200)


async def _confirm(api: Api) -> Call:
    return Call("POST", f"/holds/{await _hold(api)}/confirm", confirm_body(), 201, _key())


async def _cancel(api: Api) -> Call:
    path = f"/appointments/{await _appointment(api)}/cancel"
    return Call("POST", path, {"reason": "ill"}, 200, _key())


async def _availability(api: Api) -> Call:
    query = "appointment_type_id={}&start_date=2030-07-01&end_date=2030-07-07"
    path = "/availability?" + query.format(hold_body()["appointment_type_id"])
    return Call("GET", path, None, 200)


CALLS = {
    "create": _create,
    "get": _get,
    "release": _release,
    "confirm": _confirm,
    "cancel": _cancel,
    "availability": _availability,
}


async def _send(api: Api, call: Call) -> tuple[int, Any, Any]:
    headers = api.auth()
    if call.idempotency_key:
        headers["Idempotency-Key"] = call.idempotency_key
    response = await api.client.request(
        call.method, api.settings.base_path + call.path, json=call.body, headers=headers
    )
    assert response.content_type == "application/json", await response.text()
    return response.status, await response.json(), response.headers


def _assert_unavailable(status: int, body: Any, headers: Any) -> None:
    assert status == 503, body
    assert body["error"]["code"] == "unavailable"
    assert body["error"]["request_id"] == headers["X-Request-Id"]
    assert int(headers["Retry-After"]) >= 1
    assert "X-RateLimit-Remaining" in headers


async def _made(api: Api) -> tuple[int, int]:
    """How many hold and appointment records Redis has."""
    client = aioredis.Redis.from_url(api.settings.redis_url)
    try:
        holds = [key async for key in client.scan_iter("holds:*:hold:*", count=1000)]
        appointments = [key async for key in client.scan_iter("holds:*:apt:*", count=1000)]
        return len(holds), len(appointments)
    finally:
        await client.aclose()


@pytest.mark.parametrize("name", list(CALLS))
async def test_each_failed_redis_call_is_a_503_and_the_retry_gets_the_outcome(
    faulty: tuple[Api, Switch], name: str
) -> None:
    api, switch = faulty
    failed_calls = 0
    for kind in KINDS:
        for fail_at in itertools.count(1):
            call = await CALLS[name](api)
            before = await _made(api)
            switch.arm(fail_at, kind)
            try:
                status, body, headers = await _send(api, call)
            finally:
                switch.disarm()
            if not switch.fired:
                assert status == call.status, body
                break  # the request makes fewer than fail_at calls
            failed_calls += 1
            if status != call.status:  # else the failed call was one whose loss is harmless
                _assert_unavailable(status, body, headers)
            await _assert_retry_gets_one_outcome(api, call, body if status == call.status else None)
            made = tuple(after - was for after, was in zip(await _made(api), before, strict=True))
            assert made == {"create": (1, 0), "confirm": (0, 1)}.get(name, (0, 0)), (kind, fail_at)
    assert failed_calls >= 2 * len(KINDS)


async def _retry(api: Api, call: Call) -> tuple[int, Any, Any]:
    """As a client would: again while the first attempt may still be in progress (409)."""
    for _ in range(30):
        status, body, headers = await _send(api, call)
        if status != 409 or body["error"]["code"] != "idempotency_key_in_use":
            break
        await asyncio.sleep(0.1)
    return status, body, headers


async def _assert_retry_gets_one_outcome(api: Api, call: Call, first: Any) -> None:
    status, retried, headers = await _retry(api, call)
    assert status == call.status, retried
    if call.idempotency_key is None:
        return
    assert "id" in retried["data"]
    if first is not None:
        assert retried["data"]["id"] == first["data"]["id"]
    status, again, headers = await _send(api, call)
    assert (status, headers["Idempotent-Replayed"]) == (call.status, "true")
    assert again["data"]["id"] == retried["data"]["id"]
