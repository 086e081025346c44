"""`holds serve` with some of its speed-ups taken out, to measure what each one gives.

    python -m benchmarks.variant_server --without uvloop,orjson -- --port 8080

- uvloop: asyncio's own event loop instead.
- autopipeline: the request path's scripts through redis-py's pooled client instead of the
  auto-pipelining connection (app/store/pipeline.py).
- hiredis: redis-py's pure-Python reply parser (meaningful with autopipeline taken out too;
  the auto-pipelining client is built on hiredis).
- orjson: the json module for response bodies.
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
    import app.web.app

    def redis_py_scripts(url: str, **_: Any) -> Redis:
        client: Redis = Redis.from_url(url, max_connections=256)
        return client

    app.web.app.AutoPipeline = redis_py_scripts  # type: ignore[attr-defined,assignment]


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


REMOVALS: dict[str, Callable[[], None]] = {
    "uvloop": _without_uvloop,
    "autopipeline": _without_autopipeline,
    "hiredis": _without_hiredis,
    "orjson": _without_orjson,
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
