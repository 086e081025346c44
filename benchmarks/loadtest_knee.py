"""The knee of the booking flow: the highest arrival rate `holds serve` meets a threshold at.

    python -m benchmarks.loadtest_knee [--serve 1,2] [--ramp 5:1000:5] [--ramp-by x1.25]
        [--threshold 'p99<50ms'] [--generators 2] [--clinicians 200] [--warmup 5]

For each process count of --serve: a fresh data directory, `holds catalog generate` and
`holds catalog load`, a key, then `holds serve --processes N` as shipped (embedded Redis with
an fsync per write, the group's worker persisting appointments to SQLite) and `holds loadtest
--ramp` against it. Prints one line per count: the knee, what the step after it measured, and
the generator's CPU. Every process it starts is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.cli import LOAD_ORG_ID
from app.db.keys_repo import SCOPES
from app.embedded_redis import free_port
from benchmarks.holds_vs_baseline import _wait

LIMITS = {"HOLDS_RATE_LIMIT_PER_MINUTE": "100000000", "HOLDS_MAX_ACTIVE_HOLDS_PER_KEY": "10000000"}


def _holds(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


def _prepared(directory: Path, clinicians: int) -> tuple[dict[str, str], str]:
    """The environment of a data directory holding the generated catalog, and a key for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= LIMITS | {"HOLDS_DATA_DIR": str(directory), "HOLDS_LOG_LEVEL": "WARNING"}
    catalog = directory / "catalog.json"
    directory.mkdir(parents=True)
    _holds(env, "catalog", "generate", "--clinicians", str(clinicians), "--out", str(catalog))
    _holds(env, "catalog", "load", str(catalog))
    created = _holds(env, "keys", "create", "--org", LOAD_ORG_ID, "--scopes", ",".join(SCOPES))
    return env, created.strip().splitlines()[-1]


@contextmanager
def _serving(env: dict[str, str], processes: int, log: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    command += ["--processes", str(processes)]
    server = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _knee(directory: Path, processes: int, args: argparse.Namespace) -> dict[str, Any]:
    env, key = _prepared(directory, args.clinicians)
    report = directory / "report.json"
    with _serving(env, processes, directory / "serve.log") as url:
        command = [sys.executable, "-m", "app", "loadtest", "--url", url, "--key", key,
                   "--ramp", args.ramp, "--processes", str(args.generators),
                   "--days", "28", "--warmup", str(args.warmup),
                   "--json", str(report)]  # fmt: skip
        command += ["--ramp-by", args.ramp_by]
        for rule in args.threshold:
            command += ["--threshold", rule]
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
    print(finished.stdout, file=sys.stderr)
    summary: dict[str, Any] = json.loads(report.read_text())
    summary["exit_status"] = finished.returncode
    return summary


def _line(processes: int, summary: dict[str, Any]) -> str:
    steps = summary["steps"]
    met = [s for s in steps if not s["broken"]]
    knee = f"{met[-1]['rate']:g} flows/s ({met[-1]['throughput_rps']:.0f} req/s, " \
           f"p99 {met[-1]['p99_ms']:.1f} ms)" if met else "none"  # fmt: skip
    after = f"; {steps[-1]['rate']:g} flows/s broke {'; '.join(steps[-1]['broken'])}" \
        if steps[-1]["broken"] else "; no step broke"  # fmt: skip
    cpu = ", ".join(f"{s:.1f}" for s in summary["generator"]["cpu_seconds"])
    return (
        f"holds serve --processes {processes}: knee {knee}{after}; generator CPU s {cpu} "
        f"over {summary['duration_s']} s; invariants "
        + ("VIOLATED" if summary["invariant_violations"] else "held")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", default="1,2", help="API process counts to measure")
    parser.add_argument("--ramp", default="5:1000:5")
    parser.add_argument("--ramp-by", default="x1.25", help="a rate to add or xFACTOR")
    parser.add_argument("--threshold", action="append")
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--clinicians", type=int, default=200)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at the first rate")
    args = parser.parse_args()
    args.threshold = args.threshold or ["p99<50ms", "errors<0.1%"]
    lines = []
    with tempfile.TemporaryDirectory(prefix="holds-knee-") as scratch:
        for processes in (int(n) for n in args.serve.split(",")):
            summary = _knee(Path(scratch) / f"serve-{processes}", processes, args)
            lines.append(_line(processes, summary))
            print(lines[-1], file=sys.stderr)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
