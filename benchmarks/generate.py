"""The load generator both targets get: POST /holds with a distinct slot in every request.

    python -m benchmarks.generate --url URL --key KEY --bodies FILE --seconds 10 \
        (--concurrency 64 | --rate 2000)

Closed loop with --concurrency (peak throughput), open loop with --rate (latency at a given
rate). Prints one JSON object: requests per second, latency percentiles, status counts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from app.loadtest.report import percentile


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, out: list[Any]) -> None:
    began = time.monotonic()
    try:
        async with http.post(url, data=body) as response:
            await response.read()
            status = response.status
    except aiohttp.ClientError:
        status = 0
    out.append((time.monotonic() - began, status))


async def closed_loop(url: str, headers: dict[str, str], bodies: list[bytes], seconds: float,
                      concurrency: int) -> list[Any]:  # fmt: skip
    results: list[Any] = []
    feed = itertools.cycle(bodies)
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:

        async def worker() -> None:
            while time.monotonic() < deadline:
                await _post(http, url, next(feed), results)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def open_loop(url: str, headers: dict[str, str], bodies: list[bytes], seconds: float,
                    rate: float) -> list[Any]:  # fmt: skip
    results: list[Any] = []
    started = time.monotonic()
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=0)
    ) as http:
        tasks = []
        for n, body in enumerate(itertools.cycle(bodies)):
            due = started + n / rate
            if due >= started + seconds:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(_post(http, url, body, results)))
        await asyncio.gather(*tasks)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="one JSON body per line")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--skip", type=int, default=0, help="start at this body")
    args = parser.parse_args()
    bodies = [line.encode() for line in args.bodies.read_text().splitlines() if line]
    bodies = bodies[args.skip :] + bodies[: args.skip]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    started = time.monotonic()
    if args.rate:
        results = asyncio.run(open_loop(args.url, headers, bodies, args.seconds, args.rate))
    else:
        results = asyncio.run(
            closed_loop(args.url, headers, bodies, args.seconds, args.concurrency or 64)
        )
    elapsed = time.monotonic() - started
    latencies = sorted(seconds * 1000 for seconds, _ in results)
    print(json.dumps({
        "requests": len(results),
        "rps": round(len(results) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "statuses": dict(Counter(str(status) for _, status in results)),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
