"""Chaos: contended booking traffic while API processes, workers and Redis are killed -9.

Two `holds serve` processes and two `holds worker` processes share one redis-server configured
as `deploy/redis.conf` (given a data set that takes a visible while to load, so every restart
has a LOADING phase) and one SQLite database. Clients book random, overlapping slots of a few
clinicians (create, then confirm, release or leave to expire; cancel some confirmed), every POST
with its own Idempotency-Key. Every ~20 s one process, chosen at random, is killed with SIGKILL
and restarted. A write answered 503, or lost to a kill, is retried with its key until it gets
an answer, and that answer must be the committed outcome (a replay when the first attempt had
committed). Then, once the workers have caught up, the checks:

- server errors: 5xx other than 503 (must be 0);
- double bookings: overlapping confirmed appointments of one clinician in SQL (must be 0);
- lost confirmations: a 201 confirm whose appointment is not exactly one SQL row with the
  status the client last saw (must be 0);
- unrecovered writes: a 503'd or lost write whose retries did not get its outcome (must be 0).

    python -m benchmarks.chaos --duration 180

Exit status 0 when every check holds. Everything listens on loopback and is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from sqlalchemy import text

from app.catalog.loader import load_catalog
from app.db import keys_repo
from app.db.engine import create_engine, migrate, session_factory
from app.embedded_redis import free_port, redis_server_binary

DEPLOY_CONF = Path(__file__).parents[1] / "deploy" / "redis.conf"
ORG = "org_00000000-0000-4000-8000-00000000c4a0"
KIND = "type_00000000-0000-4000-8000-00000000c4a0"
PATIENT = "pat_00000000-0000-4000-8000-00000000c4a0"
CLINICIANS = [f"cli_00000000-0000-4000-8000-{n:012d}" for n in range(3)]
DAYS = [(date.today() + timedelta(days=offset)).isoformat() for offset in range(2, 12)]
# 30-minute appointments on a 15-minute grid: neighbouring slots overlap, so requests contend.
STARTS = [f"{m // 60:02d}:{m % 60:02d}" for m in range(9 * 60, 17 * 60, 15)]
RETRYABLE = (aiohttp.ClientError, asyncio.TimeoutError)


def catalog() -> dict[str, Any]:
    week = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    schedule = [{"weekday": d, "start": "09:00", "end": "17:30"} for d in week]
    clinicians = [
        {"id": c, "first_name": "C", "last_name": str(n), "schedule": schedule}
        for n, c in enumerate(CLINICIANS)
    ]
    kind = {"id": KIND, "name": "Chaos", "duration_minutes": 30, "slot_interval_minutes": 15,
            "clinician_ids": CLINICIANS}  # fmt: skip
    patient = {"id": PATIENT, "first_name": "P", "last_name": "Q", "date_of_birth": "1990-01-01"}
    org = {"id": ORG, "name": "Chaos", "timezone": "UTC", "clinicians": clinicians,
           "appointment_types": [kind], "patients": [patient]}  # fmt: skip
    return {"organizations": [org]}


async def prepare(database_url: str) -> str:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    await load_catalog(sessions, json.dumps(catalog()))
    scopes = ["write_holds", "read_appointments", "write_appointments", "read_availability"]
    async with sessions.begin() as session:
        created = await keys_repo.create_key(session, ORG, scopes, "chaos", True)
    await engine.dispose()
    return created.secret


class Processes:
    """Redis, the API processes and the workers, each killable and restartable by name."""

    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory = directory
        self.redis_port = free_port()
        self.api_ports = [free_port(), free_port()]
        self.database_url = database_url
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def names(self) -> list[str]:
        return ["redis", "api-0", "api-1", "worker-0", "worker-1"]

    def start(self, name: str) -> None:
        log = (self.directory / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(self._command(name), env=self._env(), stdout=log,
                                              stderr=subprocess.STDOUT)  # fmt: skip

    def _command(self, name: str) -> list[str]:
        if name == "redis":
            return [redis_server_binary(), str(DEPLOY_CONF), "--port", str(self.redis_port),
                    "--dir", str(self.directory), "--bind", "127.0.0.1"]  # fmt: skip
        if name.startswith("api"):
            port = self.api_ports[int(name[-1])]
            return [sys.executable, "-m", "app", "serve", "--port", str(port)]
        return [sys.executable, "-m", "app", "worker", "--metrics-port", "0"]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
        return env | {
            "HOLDS_REDIS_URL": self.redis_url,
            "HOLDS_DATABASE_URL": self.database_url,
            "HOLDS_LOG_LEVEL": "WARNING",
            "HOLDS_HOLD_TTL_SECONDS": "20",
            "HOLDS_RATE_LIMIT_PER_MINUTE": "1000000",
            "HOLDS_MAX_ACTIVE_HOLDS_PER_KEY": "100000",
        }

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            process = self.running.pop(name)
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)  # error codes of 4xx answers
    lost: int = 0  # no answer: the process died, or refused the connection
    retried_writes: int = 0  # writes answered 503 or lost, then retried with their key
    recovered_replayed: int = 0  # ... whose retry found the first attempt's committed outcome
    recovered_fresh: int = 0  # ... whose retry did the work (the first had not committed)
    unrecovered: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    confirmed: dict[str, str] = field(default_factory=dict)  # appointment id -> last status
    confirmed_holds: dict[str, str] = field(default_factory=dict)  # hold id -> appointment id
    kills: Counter[str] = field(default_factory=Counter)


class Client:
    def __init__(self, http: aiohttp.ClientSession, procs: Processes, key: str, tally: Tally):
        self.http, self.procs, self.tally = http, procs, tally
        self.auth = {"Authorization": f"Bearer {key}"}

    def _base(self) -> str:
        return f"http://127.0.0.1:{random.choice(self.procs.api_ports)}/v1"

    async def send(self, method: str, path: str, body: Any = None,
                   key: str | None = None) -> tuple[int, Any, bool]:  # fmt: skip
        """(status, body, replayed); status 0 when no answer came."""
        headers = self.auth | ({"Idempotency-Key": key} if key else {})
        try:
            async with self.http.request(method, self._base() + path, json=body,
                                         headers=headers) as response:  # fmt: skip
                payload = await response.json(content_type=None)
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                status = response.status
                request_id = response.headers.get("X-Request-Id")
        except RETRYABLE:
            self.tally.lost += 1
            return 0, None, False
        except ValueError:  # not JSON: a server error
            status, payload, replayed, request_id = 500, None, False, None
        self.tally.statuses[status] += 1
        if 400 <= status < 500 and isinstance(payload, dict) and "error" in payload:
            self.tally.refusals[payload["error"]["code"]] += 1
        if (status >= 500 and status != 503) or request_id is None:
            self.tally.server_errors.append(f"{method} {path}: {status} {payload}")
        return status, payload, replayed

    async def write(self, method: str, path: str, body: Any, key: str) -> tuple[int, Any]:
        """Send a write; on a 503 or no answer, retry it with its key until it gets one."""
        status, payload, _ = await self.send(method, path, body, key)
        if status not in (0, 503):
            return status, payload
        self.tally.retried_writes += 1
        for attempt in range(120):
            await asyncio.sleep(min(0.1 * 2**attempt, 1.0))
            status, payload, replayed = await self.send(method, path, body, key)
            if status == 409 and payload["error"]["code"] == "idempotency_key_in_use":
                continue
            if status not in (0, 503):
                if replayed:
                    self.tally.recovered_replayed += 1
                else:
                    self.tally.recovered_fresh += 1
                return status, payload
        self.tally.unrecovered.append(f"{method} {path} {key}: gave up at {status}")
        return status, payload

    async def flow(self, n: int) -> None:
        """One booking attempt: hold a random slot, then confirm, release or leave it."""
        hold = {"appointment_type_id": KIND, "clinician_id": random.choice(CLINICIANS),
                "date": random.choice(DAYS), "start_time": random.choice(STARTS)}  # fmt: skip
        if random.random() < 0.1:
            query = f"appointment_type_id={KIND}&start_date={DAYS[0]}&end_date={DAYS[-1]}"
            await self.send("GET", f"/availability?{query}")
        status, created = await self.write("POST", "/holds", hold, f"hold-{n}")
        if status != 201:
            return
        hold_id = created["data"]["id"]
        choice = random.random()
        if choice < 0.15:
            await self.send("GET", f"/holds/{hold_id}")
        if choice < 0.7:
            await self._confirm(hold_id, n)
        elif choice < 0.9:
            await self.write("DELETE", f"/holds/{hold_id}", None, f"release-{n}")

    async def _confirm(self, hold_id: str, n: int) -> None:
        path = f"/holds/{hold_id}/confirm"
        status, confirmed = await self.write("POST", path, {"patient_id": PATIENT}, f"confirm-{n}")
        if status == 409 and confirmed["error"]["code"] == "hold_already_confirmed":
            self.tally.unrecovered.append(f"confirm of {hold_id} lost its own appointment")
        if status != 201:
            return
        appointment_id = confirmed["data"]["id"]
        self.tally.confirmed[appointment_id] = "confirmed"
        self.tally.confirmed_holds[hold_id] = appointment_id
        if random.random() < 0.4:
            path = f"/appointments/{appointment_id}/cancel"
            status, cancelled = await self.write("POST", path, {"reason": "chaos"}, f"cancel-{n}")
            if status == 200:
                self.tally.confirmed[appointment_id] = cancelled["data"]["status"]


async def traffic(client: Client, until: float, counter: list[int]) -> None:
    while time.monotonic() < until:
        counter[0] += 1
        await client.flow(counter[0])


async def chaos(procs: Processes, until: float, every: float, tally: Tally) -> None:
    """Kill Redis, an API process and a worker in turn (which of the two: at random)."""
    for turn in itertools.count():
        await asyncio.sleep(every * random.uniform(0.7, 1.3))
        if time.monotonic() > until:
            return
        name = ("redis", f"api-{random.randrange(2)}", f"worker-{random.randrange(2)}")[turn % 3]
        procs.kill(name)
        tally.kills[name] += 1
        print(f"  {time.strftime('%H:%M:%S')} kill -9 {name}", flush=True)
        await asyncio.sleep(0.5)
        procs.start(name)


async def wait_until_ready(procs: Processes, http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 60
    pending = list(procs.api_ports)
    while pending and time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{pending[0]}/readyz") as response:
                if response.status == 200:
                    pending.pop(0)
                    continue
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    if pending:
        raise SystemExit(f"API processes on ports {pending} never became ready")


async def fill_redis(url: str, keys: int) -> None:
    """A data set that takes Redis a visible while to load after each restart."""
    client = aioredis.Redis.from_url(url)
    for _ in range(100):
        try:
            await client.ping()
            break
        except (aioredis.ConnectionError, OSError):
            await asyncio.sleep(0.1)
    if keys:
        await client.execute_command("DEBUG", "POPULATE", keys, "filler", 64)
        await client.bgrewriteaof()
        for _ in range(600):
            if not (await client.info("persistence"))["aof_rewrite_in_progress"]:
                break
            await asyncio.sleep(0.1)
    await client.aclose()


async def caught_up(procs: Processes, database_url: str, tally: Tally) -> list[str]:
    """Wait (up to 60 s) until SQL has every confirmation as the client last saw it."""
    deadline = time.monotonic() + 60
    while True:
        rows = await sql_rows(database_url, "SELECT id, status FROM appointments")
        found = Counter(row.id for row in rows)
        status = {row.id: row.status for row in rows}
        missing = [
            f"{a}: {found[a]} rows, status {status.get(a)} (client saw {seen})"
            for a, seen in tally.confirmed.items()
            if found[a] != 1 or status.get(a) != seen
        ]
        if not missing or time.monotonic() > deadline:
            return missing
        await asyncio.sleep(1)


async def sql_rows(database_url: str, query: str) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(query)))
    finally:
        await engine.dispose()


async def double_bookings(database_url: str) -> list[str]:
    rows = await sql_rows(
        database_url,
        "SELECT id, clinician_id, occupied_start, occupied_end FROM appointments "
        "WHERE status = 'confirmed' ORDER BY clinician_id, occupied_start",
    )
    problems: list[str] = []
    reach: dict[str, tuple[Any, str]] = {}
    for row in rows:
        before = reach.get(row.clinician_id)
        if before is not None and row.occupied_start < before[0]:
            problems.append(f"{before[1]} and {row.id} overlap")
        if before is None or row.occupied_end > before[0]:
            reach[row.clinician_id] = (row.occupied_end, row.id)
    return problems


async def hold_links(client: Client, tally: Tally) -> list[str]:
    """Each confirmed hold names the appointment its client was given, no other."""
    problems = []
    for hold_id, appointment_id in tally.confirmed_holds.items():
        status, body, _ = await client.send("GET", f"/holds/{hold_id}")
        if status == 200 and body["data"]["appointment_id"] != appointment_id:
            problems.append(f"{hold_id} names {body['data']['appointment_id']}, client got "
                            f"{appointment_id}")  # fmt: skip
    return problems


async def run(args: argparse.Namespace, directory: Path) -> int:
    database_url = f"sqlite:///{directory / 'holds.sqlite3'}"
    key = await prepare(database_url)
    procs = Processes(directory, database_url)
    tally = Tally()
    try:
        procs.start("redis")
        await fill_redis(procs.redis_url, args.filler_keys)
        for name in procs.names[1:]:
            procs.start(name)
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await wait_until_ready(procs, http)
            client = Client(http, procs, key, tally)
            started = time.monotonic()
            until = started + args.duration
            counter = [0]
            print(f"chaos: {args.duration:.0f} s, {args.clients} clients, a kill every "
                  f"~{args.kill_every:.0f} s", flush=True)  # fmt: skip
            await asyncio.gather(
                chaos(procs, until, args.kill_every, tally),
                *(traffic(client, until, counter) for _ in range(args.clients)),
            )
            elapsed = time.monotonic() - started
            await wait_until_ready(procs, http)
            lost_confirmations = await caught_up(procs, database_url, tally)
            overlaps = await double_bookings(database_url)
            links = await hold_links(client, tally)
    finally:
        procs.stop_all()
    return report(tally, elapsed, lost_confirmations, overlaps, links)


def report(tally: Tally, elapsed: float, lost: list[str], overlaps: list[str],
           links: list[str]) -> int:  # fmt: skip
    answered = sum(tally.statuses.values())
    print(f"requests answered: {answered} in {elapsed:.0f} s, no answer (killed): {tally.lost}")
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    print(f"refusals: {dict(tally.refusals.most_common())}")
    print(f"kills: {dict(tally.kills)}")
    print(f"writes retried after a 503 or no answer: {tally.retried_writes}; "
          f"recovered as a replay of the committed outcome: {tally.recovered_replayed}; "
          f"done by the retry: {tally.recovered_fresh}")  # fmt: skip
    print(f"201 confirms: {len(tally.confirmed)}")
    checks = {
        "server errors (5xx other than 503)": tally.server_errors,
        "double bookings": overlaps,
        "lost confirmations": lost,
        "unrecovered writes": tally.unrecovered + links,
    }
    for name, problems in checks.items():
        print(f"{name}: {len(problems)}")
        for problem in problems[:10]:
            print(f"    {problem}")
    return 0 if not any(checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=12, help="concurrent booking clients")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    parser.add_argument("--filler-keys", type=int, default=600_000,
                        help="keys Redis reloads at each restart (so loading shows)")  # fmt: skip
    parser.add_argument("--directory", type=Path, help="keep files here (default: temporary)")
    args = parser.parse_args()
    if args.directory:
        args.directory.mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(run(args, args.directory.resolve())))
    with tempfile.TemporaryDirectory(prefix="holds-chaos-") as directory:
        sys.exit(asyncio.run(run(args, Path(directory))))


if __name__ == "__main__":
    main()
