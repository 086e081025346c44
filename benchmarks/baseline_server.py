"""The baseline: bare aiohttp handlers, one that parses a JSON body and one that reads the path,
each answering a fixed hold.

python -m benchmarks.baseline_server --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
import json

import uvloop
from aiohttp import web

_HOLD = {"data": {"id": "hold_00000000-0000-4000-8000-000000000000", "status": "active"}}


async def create_hold(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.json_response(_HOLD, status=201)


async def get_hold(request: web.Request) -> web.Response:
    request.match_info["hold_id"]
    return web.json_response(_HOLD)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the same loop as holds serve
    app = web.Application()
    app.router.add_post("/v1/holds", create_hold)
    app.router.add_get("/v1/holds/{hold_id}", get_hold)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
