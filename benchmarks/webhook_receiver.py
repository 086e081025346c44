"""A minimal webhook receiver for the benchmark: answers 200 and appends `<webhook-id> <epoch
seconds>` per delivery to a file.

    python -m benchmarks.webhook_receiver --port 9200 --out received.txt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out.open("a", buffering=1)

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        out.write(f"{request.headers['webhook-id']} {time.time():.6f}\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hooks", receive)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
