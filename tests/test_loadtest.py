"""`holds loadtest` against a live server loaded with a generated catalog: steps, ramps,
thresholds and their exit statuses, generator processes, the invariant checks, Locust."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.cli import LOAD_ORG_ID
from app.db.keys_repo import SCOPES
from app.loadtest import invariants
from app.loadtest.main import Ramp
from app.loadtest.plan import Mix, Target, discover
from app.loadtest.processes import GeneratorFailed, Generators
from app.loadtest.runner import Step, run_share
from app.loadtest.stats import Stats, millis
from app.loadtest.thresholds import Threshold, broken
from tests.servers import DemoServer, demo_server

LOAD_SETTINGS = {"rate_limit_per_minute": "1000000", "max_active_holds_per_key": "100000"}
LOCUSTFILE = Path(__file__).parents[1] / "app" / "loadtest" / "locustfile.py"


@dataclass(frozen=True)
class LoadServer:
    api: str
    key: str  # of the generated organisation, with every scope


def _holds(*args: str, data: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")} | env
    if data is not None:
        environment["HOLDS_DATA_DIR"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=180,
        env=environment,
    )  # fmt: skip


@pytest.fixture(scope="module")
def server_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load")


@pytest.fixture(scope="module")
def live_server(server_directory: Path) -> Iterator[DemoServer]:
    with demo_server(server_directory, **LOAD_SETTINGS) as server:
        yield server


@pytest.fixture(scope="module")
def load_server(
    live_server: DemoServer, server_directory: Path, tmp_path_factory: pytest.TempPathFactory
) -> LoadServer:
    """The live server with `holds catalog generate`'s catalog loaded and a key for it."""
    data = server_directory / "data"  # where demo_server keeps the server's SQL
    catalog = tmp_path_factory.mktemp("catalog") / "load.json"
    made = _holds("catalog", "generate", "--clinicians", "20", "--out", str(catalog))
    assert made.returncode == 0, made.stderr
    assert "20 clinicians, 6720 slots a week" in made.stderr
    loaded = _holds("catalog", "load", str(catalog), data=data)
    assert loaded.returncode == 0, loaded.stderr
    assert "clinicians: 20 created" in loaded.stdout
    again = _holds("catalog", "load", str(catalog), data=data)
    assert "clinicians: 20 unchanged" in again.stdout
    created = _holds("keys", "create", "--org", LOAD_ORG_ID, "--scopes", ",".join(SCOPES),
                     "--test", data=data)  # fmt: skip
    assert created.returncode == 0, created.stderr
    return LoadServer(live_server.api, created.stdout.strip().splitlines()[-1])


def _loadtest(server: LoadServer, *flags: str) -> subprocess.CompletedProcess[str]:
    return _holds("loadtest", "--url", server.api, "--key", server.key, "--days", "7", *flags)


def test_two_processes_book_the_generated_catalog_and_merge_their_counts(
    load_server: LoadServer, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    finished = _loadtest(load_server, "--rate", "40", "--duration", "2", "--processes", "2",
                         "--threshold", "errors<1%", "--warmup", "0.5",
                         "--json", str(report))  # fmt: skip
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "warm-up: 20 flows at 40/s, not judged" in finished.stderr
    assert "thresholds: met errors<1%" in finished.stdout
    assert "invariants: held" in finished.stdout
    summary = json.loads(report.read_text())
    assert summary["generator"]["processes"] == 2
    assert all(seconds > 0 for seconds in summary["generator"]["cpu_seconds"])
    assert summary["flows"] == 80  # the warm-up's flows are not in the report
    endpoints = summary["endpoints"]
    assert endpoints["GET /availability"]["count"] == 80  # each flow reads a day first
    for stats in endpoints.values():
        assert sum(stats["statuses"].values()) == stats["count"]
    assert summary["requests"] == sum(stats["count"] for stats in endpoints.values())
    holds = endpoints["POST /holds"]
    assert holds["count"] == 80 - summary["flows_with_no_slot_offered"]
    # Flows pick among the offered slots of 20 diaries over 7 days: they book, not collide.
    assert holds["statuses"].get("409", 0) <= holds["count"] * 0.1
    assert (
        summary["appointments_booked"] == endpoints["POST /holds/{id}/confirm"]["statuses"]["201"]
    )
    assert 0 < holds["p50_ms"] <= holds["p99_ms"] <= holds["max_ms"]


def test_a_broken_threshold_exits_3_and_says_which_while_invariants_hold(
    load_server: LoadServer, tmp_path: Path
) -> None:
    plot = tmp_path / "plot.html"
    finished = _loadtest(load_server, "--rate", "20", "--duration", "1", "--contention", "0.5",
                         "--threshold", "errors<1%", "--threshold", "p50<1us",
                         "--plot", str(plot))  # fmt: skip
    assert finished.returncode == 3, finished.stdout + finished.stderr
    verdict = [line for line in finished.stdout.splitlines() if line.startswith("thresholds:")]
    assert len(verdict) == 1
    assert verdict[0].startswith("thresholds: BROKEN p50<1us (p50 ")
    assert "errors<1%" not in verdict[0]
    assert "invariants: held" in finished.stdout
    assert "<svg" in plot.read_text()


def test_a_ramp_stops_at_the_first_broken_step_and_reports_the_knee(
    load_server: LoadServer, tmp_path: Path
) -> None:
    # Every flow aims at the same three slots and books what it holds: once all three are
    # taken, a step's holds are all 409, which breaks `conflicts<100%`; the first step cannot.
    report = tmp_path / "report.json"
    finished = _loadtest(load_server, "--ramp", "3:60:1", "--contention", "1",
                         "--mix", "confirm=1", "--threshold", "conflicts<100%",
                         "--json", str(report))  # fmt: skip
    assert finished.returncode == 0, finished.stdout + finished.stderr
    summary = json.loads(report.read_text())
    steps = summary["steps"]
    assert 2 <= len(steps) < 20
    assert [step["rate"] for step in steps] == [3.0 * n for n in range(1, len(steps) + 1)]
    assert all(not step["broken"] for step in steps[:-1])
    assert steps[-1]["broken"] == ["conflicts<100% (conflicts 100.000%)"]
    knee, broke = steps[-2]["rate"], steps[-1]["rate"]
    assert summary["knee"] == knee
    assert f"knee: {knee:g} flows/s, the highest rate that met every threshold; " \
           f"{broke:g} flows/s broke conflicts<100%" in finished.stdout  # fmt: skip
    assert "invariants: held" in finished.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ramp", "100:2000:5"], "--ramp needs at least one --threshold"),
        (["--ramp", "100:2000", "--threshold", "p99<50ms"], "use FROM:TO:STEP_SECONDS"),
        (["--rate", "5", "--duration", "1", "--threshold", "p99<50"], "a latency needs a unit"),
        (["--rate", "5"], "give --rate and --duration, or --ramp"),
    ],
)
def test_bad_flags_exit_2_with_one_line(flags: list[str], message: str) -> None:
    finished = _holds("loadtest", "--url", "http://127.0.0.1:9/v1", "--key", "k", *flags)
    assert finished.returncode == 2
    assert message in finished.stderr
    assert "Traceback" not in finished.stderr


def test_a_refused_key_exits_2_with_one_line(load_server: LoadServer) -> None:
    finished = _holds("loadtest", "--url", load_server.api, "--key", "pk_test_unknown",
                      "--rate", "5", "--duration", "1")  # fmt: skip
    assert finished.returncode == 2
    assert finished.stderr.startswith(f"error: {load_server.api}: GET /appointment-types")
    assert "answered 401" in finished.stderr
    assert "Traceback" not in finished.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--days", "8"], "--days 1-7"),
        (["--hours", "8-20"], "--hours must be HH:MM-HH:MM"),
        (["--hours", "20:00-08:00"], "the start before the end"),
    ],
)
def test_catalog_generate_refuses_a_bad_shape_with_exit_2(flags: list[str], message: str) -> None:
    finished = _holds("catalog", "generate", "--clinicians", "2", *flags)
    assert finished.returncode == 2
    assert message in finished.stderr
    assert finished.stdout == ""


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None,
    reason="locust is not installed (pip install 'holds[locust]')",
)
def test_the_locustfile_runs_the_booking_flow_headless(
    load_server: LoadServer, tmp_path: Path
) -> None:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", load_server.api,
        "--headless", "-u", "4", "-r", "4", "-t", "3s", "--only-summary",
        "--csv", str(tmp_path / "locust"),
    ]  # fmt: skip
    environment = os.environ | {"HOLDS_LOADTEST_KEY": load_server.key, "HOLDS_LOADTEST_DAYS": "7"}
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env=environment)  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-2000:]
    with (tmp_path / "locust_stats.csv").open() as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    assert int(rows["POST /holds"]["Request Count"]) > 0
    assert int(rows["GET /availability"]["Request Count"]) >= int(
        rows["POST /holds"]["Request Count"]
    )
    assert rows["Aggregated"]["Failure Count"] == "0"


async def test_latency_is_timed_from_the_schedule_so_a_late_start_counts(
    load_server: LoadServer,
) -> None:
    target = Target(url=load_server.api, keys=[load_server.key])
    async with aiohttp.ClientSession() as http:
        await discover(http, target, 7)
    late = time.monotonic() - 1.0  # five flows were due between 1.0 and 0.5 s ago
    stats = await run_share(target, Step(0, 10.0, 0.5, late, late, Mix(), 0.0, 0), 0, 1)
    first_requests = stats.latency["GET /availability"]
    assert first_requests.get_total_count() == 5
    assert first_requests.get_min_value() >= 500_000  # µs: the lateness is in the latency
    assert stats.start_lag.get_min_value() >= 500_000


def test_a_failing_generator_process_stops_the_run_saying_why() -> None:
    step = Step(0, 0.0, 1.0, time.monotonic(), time.monotonic(), Mix(), 0.0, 0)  # rate 0: fails
    with Generators(2) as generators:
        generators.aim(Target(url="http://127.0.0.1:9/v1", keys=["unused"]))
        with pytest.raises(GeneratorFailed, match="generator process 0: ZeroDivisionError"):
            generators.run(step)


def test_stats_merged_over_the_wire_equal_one_process_recording_everything() -> None:
    first, second, alone = Stats(), Stats(), Stats()
    for n in range(1, 1001):
        status = 409 if n % 10 == 0 else 201
        (first if n % 2 else second).record("POST /holds", n // 100, n * 50, status)
        alone.record("POST /holds", n // 100, n * 50, status)
    merged = Stats()
    for part in (first, second):
        merged.merge(Stats.from_wire(part.to_wire()))
    assert merged.requests() == alone.requests() == 1000
    assert merged.statuses == alone.statuses == {"POST /holds": {"201": 900, "409": 100}}
    for percentile in (50, 99, 100):
        assert millis(merged.all_requests(), percentile) == millis(alone.all_requests(), percentile)
    assert millis(merged.all_requests(), 99) == pytest.approx(49.5, rel=0.001)


def test_thresholds_judge_errors_conflicts_and_latency() -> None:
    stats = Stats()
    for n in range(1000):
        status = 0 if n < 2 else 409 if n < 52 else 201  # 2 unanswered, 50 taken slots
        stats.record("POST /holds", 0, 1000 + n, status)
    rules = [Threshold.parse(rule) for rule in ("errors<0.1%", "conflicts<10%", "max<1s")]
    assert broken(rules, stats) == ["errors<0.1% (errors 0.200%)"]
    assert broken([Threshold.parse("p50<1ms")], stats) == ["p50<1ms (p50 1.50 ms)"]


def test_thresholds_parse_units_and_shares() -> None:
    assert Threshold.parse("p99<50ms").limit == 50.0
    assert Threshold.parse("p99.9 <= 1.5s").limit == 1500.0
    assert Threshold.parse("max<250us").limit == 0.25
    assert Threshold.parse("errors<0.1%").limit == pytest.approx(0.001)
    assert Threshold.parse("conflicts<0.05").limit == 0.05
    for bad in ("p98<5ms", "errors<1ms", "p99 50ms"):
        with pytest.raises(ValueError):
            Threshold.parse(bad)


def test_ramp_rates_rise_by_the_first_rate_unless_told_a_step_or_factor() -> None:
    assert Ramp.parse("100:500:5", None).rates() == [100, 200, 300, 400, 500]
    assert Ramp.parse("100:500:5", "150").rates() == [100, 250, 400]
    assert Ramp.parse("100:500:5", "x2").rates() == [100, 200, 400]
    assert Ramp.parse("10:20:5", "x1.5").rates() == [10, 15]
    for bad_ramp, by in (
        ("500:100:5", None),
        ("100:500:0", None),
        ("1:2:3", "x1"),
        ("1:2:3", "-1"),
    ):
        with pytest.raises(ValueError):
            Ramp.parse(bad_ramp, by)


async def test_an_unreadable_confirmed_appointment_is_a_violation(
    live_server: DemoServer,
) -> None:
    target = Target(url=live_server.api, keys=[live_server.key])
    async with aiohttp.ClientSession() as http:
        problems = await invariants.violations(
            http, target, ["apt_00000000-0000-4000-8000-000000000000"]
        )
    assert problems == ["appointment apt_00000000-0000-4000-8000-000000000000 from a 201 "
                        "confirm reads 404"]  # fmt: skip


def _appointment(apt_id: str, start: str, end: str, kind: str = "type_a") -> dict[str, Any]:
    return {
        "id": apt_id,
        "status": "confirmed",
        "appointment_type_id": kind,
        "clinician_profile_id": "cli_1",
        "location_id": "loc_1",
        "start_time": f"2030-01-07T{start}:00Z",
        "end_time": f"2030-01-07T{end}:00Z",
    }


def test_overlaps_are_found_beyond_neighbours_and_with_buffers() -> None:
    long_one = _appointment("apt_long", "09:00", "12:00")
    inside = _appointment("apt_inside", "09:30", "10:00")
    later = _appointment("apt_later", "11:00", "11:30")
    assert len(invariants.overlaps([long_one, inside, later], {})) == 2
    first = _appointment("apt_1", "09:00", "09:30", kind="buffered")
    second = _appointment("apt_2", "09:40", "10:00")
    assert invariants.overlaps([first, second], {}) == []
    buffered = {"buffered": invariants.TypeRules(0, 15, 1)}
    assert invariants.overlaps([first, second], buffered) == [
        "clinician cli_1: apt_1 and apt_2 overlap"
    ]


def test_seats_of_one_session_may_share_its_time_up_to_its_size() -> None:
    rules = {"class": invariants.TypeRules(0, 15, 2)}
    seats = [_appointment(f"apt_{n}", "09:00", "10:00", kind="class") for n in range(3)]
    assert invariants.overlaps(seats[:2], rules) == []
    assert invariants.overlaps(seats, rules) == ["session of apt_0: 3 seats of 2 booked"]
    in_the_buffer = _appointment("apt_after", "10:10", "10:30")
    assert invariants.overlaps([*seats[:2], in_the_buffer], rules) == [
        "clinician cli_1: apt_0 and apt_after overlap"
    ]
    other_start = _appointment("apt_other", "09:30", "10:30", kind="class")
    assert len(invariants.overlaps([seats[0], other_start], rules)) == 1


def test_mix_is_parsed_and_normalised() -> None:
    assert Mix.parse("confirm=2,release=1,abandon=1") == Mix(0.5, 0.25, 0.25)
    with pytest.raises(ValueError, match="unknown outcome"):
        Mix.parse("book=1")
