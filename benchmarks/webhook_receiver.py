"""A minimal webhook receiver for the benchmark: answers 200 and appends one line per delivery
to a file: `<webhook-id> <arrival, epoch seconds> <event type> <expires_at, epoch seconds or ->`.

    python -m benchmarks.webhook_receiver --port 9200 --out received.txt
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import orjson
from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out.open("a", buffering=1)

    async def receive(request: web.Request) -> web.Response:
        arrived = time.time()
        event = orjson.loads(await request.read())
        expires_at = event["data"].get("expires_at")
        due = f"{datetime.fromisoformat(expires_at).timestamp():.3f}" if expires_at else "-"
        out.write(f"{request.headers['webhook-id']} {arrived:.6f} {event['type']} {due}\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", receive)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
