"""`holds serve` with some of its speed-ups taken out, to measure what each one gives.

    python -m benchmarks.variant_server --without uvloop,orjson -- --port 8080

- uvloop: asyncio's own event loop instead.
- autopipeline: the request path's scripts through redis-py's pooled client instead of the
  auto-pipelining connection (app/store/pipeline.py).
- hiredis: redis-py's pure-Python reply parser (meaningful with autopipeline taken out too;
  the auto-pipelining client is built on hiredis).
- orjson: the json module for response bodies.
- hold-json: holds rendered through their pydantic models (validate, then dump) instead of
  straight from the record.
- one-middleware: CORS, the envelope and Idempotency-Key as three aiohttp middlewares, each
  entered by every request, instead of one that enters the first and last only when needed.
- slot-rules: each hold request's slot checked against the clinician's schedule from scratch,
  instead of from the (type, clinician, date) rules worked out once per catalog version.
- timer-cache: the request-latency histogram's child looked up by its labels on every
  request, and the access log's fields built even when it is off.
- lean-create: a new hold read back from its record's text (then copied to add its
  client_secret) instead of built from what was written; request bodies read by the json
  module instead of orjson; hold ids built through uuid.UUID; time off compared through
  an Interval per period.
- shown-fields: GET /holds/{id} reads the hold's whole record (HGETALL) instead of just the
  fields a hold shows.
- gc-freeze: the objects alive at startup left in the garbage collector's sight, so every
  full collection walks them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from redis.asyncio import Redis


def _without_uvloop() -> None:
    import app.cli

    app.cli._use_uvloop = lambda: None


def _without_autopipeline() -> None:
    from app.store import redis_client

    auto_pipelining = redis_client.open_pipeline

    def redis_py_scripts(url: str, *, cluster: bool, **options: Any) -> Any:
        if cluster:  # the cluster client has no redis-py stand-in on the request path
            return auto_pipelining(url, cluster=cluster, **options)
        return Redis.from_url(url, max_connections=256)

    redis_client.open_pipeline = redis_py_scripts


def _without_hiredis() -> None:
    from redis._parsers import _AsyncRESP2Parser
    from redis.asyncio.connection import AbstractConnection

    original = AbstractConnection.__init__

    def python_parser(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **(kwargs | {"parser_class": _AsyncRESP2Parser}))

    AbstractConnection.__init__ = python_parser  # type: ignore[method-assign]


def _without_orjson() -> None:
    import app.web.responses
    from app.fields import iso_utc

    def dumps(payload: Any, option: int | None = None) -> bytes:  # holds carry datetimes
        return json.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), default=iso_utc
        ).encode()

    app.web.responses.orjson = SimpleNamespace(dumps=dumps)  # type: ignore[attr-defined,assignment]


def _without_hold_json() -> None:
    import app.web.views.holds
    from app.public import HoldCreatedPublic, HoldPublic
    from app.web.responses import ok

    def through_models(hold: Any, status: int = 200) -> Any:
        model = HoldPublic if hold.client_secret is None else HoldCreatedPublic
        return ok(model.model_validate(hold), status=status)

    app.web.views.holds.responses = SimpleNamespace(hold=through_models)  # type: ignore[attr-defined,assignment]


def _without_one_middleware() -> None:
    import app.web.app
    from app.web.cors import cors
    from app.web.idempotency import idempotency
    from app.web.middleware import envelope

    create_app = app.web.app.create_app

    def with_three_middlewares(*args: Any, **kwargs: Any) -> Any:
        application = create_app(*args, **kwargs)
        application.middlewares[:] = [cors, envelope, idempotency]
        return application

    app.web.app.create_app = with_three_middlewares


def _without_timer_cache() -> None:
    import app.web.middleware as middleware
    from app import metrics

    def observe(request: Any, status: int, seconds: float) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        metrics.REQUEST_SECONDS.labels(route, request.method, str(status)).observe(seconds)
        middleware.access_log.info("request", extra={
            "method": request.method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 2),
        })  # fmt: skip

    middleware._observe = observe


def _without_slot_rules() -> None:
    import app.domain.slots as slots

    def from_scratch(catalog: Any, kind: Any, clinician: Any, day: Any) -> Any:
        slots._require_offered(kind, clinician)
        on_the_day = (b for b in clinician.schedule if b.weekday == day.weekday())
        return tuple(SimpleNamespace(block=block, steady=False) for block in on_the_day)

    slots._day_rules = from_scratch


def _without_lean_create() -> None:
    import dataclasses
    import uuid

    import app.domain.slots as slots
    import app.ids
    import app.web.parsing as parsing
    from app.domain.slots import Interval
    from app.store import codec
    from app.store.holds import HoldStore

    def read_back(self: HoldStore, hold: Any, *, created_at: int) -> Any:
        record = {
            "org": hold.org_id,
            "key": hold.api_key_id,
            "type": hold.appointment_type_id,
            "cli": hold.clinician_id,
            "loc": hold.location_id or "",
            "start": codec.epoch(hold.start_time),
            "end": codec.epoch(hold.end_time),
        }
        fields = {k: str(v) for k, v in record.items()} | {"status": "active"}
        fields |= {"created": str(created_at), "expires": str(created_at + self.ttl_seconds)}
        made = codec.hold_from(hold.id, fields, now_ms=created_at * 1000)
        return dataclasses.replace(made, client_secret=hold.client_secret)

    def json_module(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise parsing.InvalidRequest("The request body is not valid JSON.") from None

    def on_time_off(clinician: Any, slot: Any) -> bool:
        appointment = Interval(slot.start, slot.end)
        return any(appointment.overlaps(Interval(o.start, o.end)) for o in clinician.time_off)

    HoldStore._made = read_back  # type: ignore[method-assign]
    parsing._decoded = json_module
    app.ids.random_uuid_hex = lambda: uuid.uuid4().hex
    slots._on_time_off = on_time_off


_WHOLE_RECORD = """
local time = redis.call('TIME')
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
return record
"""


def _without_shown_fields() -> None:
    from app.store import codec, keys
    from app.store.holds import HoldStore

    opened = HoldStore.__init__

    def with_whole_record_script(self: HoldStore, redis: Any, **options: Any) -> None:
        opened(self, redis, **options)
        host = options.get("scripts") or redis
        self._get_whole = host.register_script(_WHOLE_RECORD)  # type: ignore[attr-defined]

    async def whole_record(self: HoldStore, org_id: str, hold_id: str) -> Any:
        now_ms, *flat = await self._get_whole(keys=[keys.hold(hold_id)])  # type: ignore[attr-defined]
        fields = codec.pairs(flat)
        if fields.get("org") != org_id:
            return None
        return codec.hold_from(hold_id, fields, now_ms=now_ms)

    HoldStore.__init__ = with_whole_record_script  # type: ignore[method-assign]
    HoldStore.get = whole_record  # type: ignore[method-assign]


def _without_gc_freeze() -> None:
    import app.cli

    async def leave_heap(app: object) -> None:
        return None

    app.cli._freeze_startup_heap = leave_heap


REMOVALS: dict[str, Callable[[], None]] = {
    "uvloop": _without_uvloop,
    "autopipeline": _without_autopipeline,
    "hiredis": _without_hiredis,
    "orjson": _without_orjson,
    "hold-json": _without_hold_json,
    "one-middleware": _without_one_middleware,
    "timer-cache": _without_timer_cache,
    "slot-rules": _without_slot_rules,
    "lean-create": _without_lean_create,
    "shown-fields": _without_shown_fields,
    "gc-freeze": _without_gc_freeze,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", default="", help="comma-separated: " + ", ".join(REMOVALS))
    parser.add_argument("serve_args", nargs=argparse.REMAINDER, help="-- then holds serve's")
    args = parser.parse_args()
    for name in filter(None, args.without.split(",")):
        REMOVALS[name]()
    from app.cli import main as holds

    serve_args = [arg for arg in args.serve_args if arg != "--"]
    sys.exit(holds(["serve", *serve_args]))


if __name__ == "__main__":
    main()
