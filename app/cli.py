"""The `holds` command: serve the API, load catalogs, manage API keys.

Each command imports what it needs when it runs: `holds worker --check`, a container's health
check every few seconds, then starts in a fraction of the time the API's imports take.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app import logs
from app.config import Settings
from app.errors import CatalogError
from app.webhooks import commands as webhook_commands

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
DEMO_ORG_ID = "org_5f0c1d2e-e89b-12d3-a456-426614170000"
LOAD_ORG_ID = "org_10ad7e57-0000-4000-8000-000000000000"  # holds catalog generate's default


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:  # a HOLDS_* variable out of range or malformed
        for problem in exc.errors():
            print(f"error: {_setting_name(problem)}: {problem['msg']}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        result: int = args.run(args)
        return result
    except Exception as exc:
        if not isinstance(exc, _user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _setting_name(problem: ErrorDetails) -> str:
    """The environment variable a settings error is about, as the operator set it."""
    field = str(problem["loc"][0]) if problem["loc"] else ""
    return f"HOLDS_{field.upper()}" if field else "settings"


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors the user can fix from their message alone: one line, no traceback."""
    from app.db.keys_repo import KeyCommandError

    return (CatalogError, KeyCommandError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holds", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--demo", action="store_true", help="load the demo catalog, print a key")
    serve.add_argument(
        "--reuse-port", action="store_true", help="let several API processes share the port"
    )
    serve.add_argument(
        "--processes", type=int, metavar="N", help="run N API processes on the port (prefork)"
    )
    # Set by the --processes parent on each child it starts; not for people.
    serve.add_argument("--child-of", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(run=_serve)

    migrate_command = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_command.set_defaults(run=_migrate)

    worker = commands.add_parser("worker", help="run an arq worker (any number may run)")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.add_argument(
        "--metrics-port", type=int, help="Prometheus endpoint (default HOLDS_WORKER_METRICS_PORT)"
    )
    worker.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if the worker whose metrics are on --metrics-port is healthy",
    )
    worker.set_defaults(run=_worker)

    _add_loadtest(commands)

    catalog = commands.add_parser("catalog", help="manage the catalog")
    catalog_commands = catalog.add_subparsers(required=True, metavar="ACTION")
    load = catalog_commands.add_parser("load", help="create or update entries from a JSON file")
    load.add_argument("file", type=Path)
    load.set_defaults(run=_catalog_load)
    _add_catalog_generate(catalog_commands)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key; prints it once")
    create.add_argument("--org", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated, e.g. write_holds")
    create.add_argument("--name")
    create.add_argument("--test", action="store_true", help="a pk_test_ key")
    create.set_defaults(run=_keys_create)
    listing = key_commands.add_parser("list", help="show keys (prefixes only, never secrets)")
    listing.add_argument("--org")
    listing.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke by whole key or 16-character prefix")
    revoke.add_argument("key")
    revoke.set_defaults(run=_keys_revoke)

    webhook_commands.add_parser(commands, _with_database)
    return parser


def _add_loadtest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    load = commands.add_parser("loadtest", help="drive the booking flow open-loop, or ramp it")
    load.add_argument(
        "--url", required=True, help="the API base URL, e.g. http://127.0.0.1:8080/v1"
    )
    load.add_argument("--key", required=True, action="append", help="API key (repeat for several)")
    load.add_argument("--rate", type=float, help="flows started per second")
    load.add_argument("--duration", type=float, help="seconds")
    load.add_argument("--ramp", metavar="FROM:TO:STEP_SECONDS",
                      help="raise the rate from FROM to TO flows/s, STEP_SECONDS a step, until "
                      "a threshold breaks; reports the knee")  # fmt: skip
    load.add_argument("--ramp-by", metavar="RATE|xFACTOR",
                      help="what each ramp step adds (default FROM), or xF: times F")  # fmt: skip
    load.add_argument("--threshold", action="append", default=[], metavar="RULE",
                      help="e.g. 'p99<50ms', 'errors<0.1%%' (repeatable); decides the exit "
                      "status")  # fmt: skip
    load.add_argument("--warmup", type=float, default=0.0, metavar="SECONDS",
                      help="run the first rate this long before the steps, unjudged")  # fmt: skip
    load.add_argument("--processes", type=int, default=1, metavar="N",
                      help="generator processes sharing the load")  # fmt: skip
    load.add_argument("--contention", type=float, default=0.0,
                      help="share of flows aiming at the same few slots (0-1)")  # fmt: skip
    load.add_argument("--mix", default="confirm=0.5,release=0.3,abandon=0.2")
    load.add_argument("--days", type=int, default=14, help="how many days ahead to book")
    load.add_argument("--timezone", default="Europe/London", help="the organisation's timezone")
    load.add_argument("--json", type=Path, help="write the report as JSON")
    load.add_argument("--plot", type=Path, help="write latency over time as an HTML page")
    load.add_argument("--seed", type=int, default=0)
    load.set_defaults(run=_loadtest)


def _add_catalog_generate(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    generate = actions.add_parser(
        "generate", help="write a synthetic catalog sized for load (for catalog load)"
    )
    generate.add_argument("--clinicians", type=int, required=True)
    generate.add_argument("--days", type=int, default=7, help="days a week each one works (1-7)")
    generate.add_argument("--hours", default="08:00-20:00", help="working hours, HH:MM-HH:MM")
    generate.add_argument("--duration", type=int, default=15, help="minutes a visit")
    generate.add_argument("--org", default=LOAD_ORG_ID, help="the organisation's id")
    generate.add_argument("--timezone", default="Europe/London")
    generate.add_argument("--out", type=Path, help="the file to write (default: stdout)")
    generate.set_defaults(run=_catalog_generate)


def _with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    from app.db.engine import create_engine, migrate, session_factory

    async def run() -> T:
        engine = create_engine(Settings().effective_database_url)
        try:
            await migrate(engine)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _migrate(args: argparse.Namespace) -> int:
    _with_database(_migrated)
    print("database schema is up to date")
    return 0


def _catalog_load(args: argparse.Namespace) -> int:
    from app.catalog.loader import load_catalog, read_catalog_file

    text = read_catalog_file(args.file)
    for line in _with_database(lambda sessions: load_catalog(sessions, text)):
        print(line)
    return 0


def _catalog_generate(args: argparse.Namespace) -> int:
    import json

    from app.catalog.loader import parse_catalog
    from app.catalog.synthetic import Shape, synthetic_catalog

    start, _, end = args.hours.partition("-")
    shape = Shape(args.org, args.clinicians, args.days, start, end, args.duration, args.timezone)
    if problem := shape.problem():
        print(f"error: {problem}", file=sys.stderr)
        return 2
    text = json.dumps(synthetic_catalog(shape), indent=1) + "\n"
    parse_catalog(text)  # what catalog load would refuse is refused here, with its message
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    print(f"{shape.clinicians} clinicians, {shape.slots_per_week()} slots a week, "
          f"organisation {shape.org_id}", file=sys.stderr)  # fmt: skip
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from app.db import keys_repo

    scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]

    async def create(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions.begin() as session:
            new = await keys_repo.create_key(session, args.org, scopes, args.name, args.test)
        print(f"created {new.row.prefix} for {new.row.org_id}: {','.join(new.row.scopes)}")
        print("Store this key now; it is not shown again:")
        return new.secret

    print(_with_database(create))
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from app.db import keys_repo

    async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with sessions() as session:
            found = await keys_repo.list_keys(session, args.org)
        return [
            f"{row.prefix}  {row.org_id}  {'revoked' if row.revoked_at else 'active'}  "
            f"{row.name or '-'}  {','.join(row.scopes)}"
            for row in found
        ]

    for line in _with_database(rows):
        print(line)
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from app.db import keys_repo

    async def revoke(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions.begin() as session:
            row = await keys_repo.revoke_key(session, args.key)
            return row.prefix

    print(f"revoked {_with_database(revoke)}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    settings = Settings()
    port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    if args.check:
        from workers.health import check  # light: run by container health checks

        if not port:
            print("error: --check asks the worker's metrics port, and it is 0", file=sys.stderr)
            return 2
        return check(args.metrics_host, port)
    from workers import main as worker_main  # only this command needs the worker code

    if not settings.redis_url:
        print(
            "error: holds worker needs HOLDS_REDIS_URL "
            "(holds serve without it runs its own worker in process)",
            file=sys.stderr,
        )
        return 2
    from app.store.redis_client import queue_problem

    if problem := queue_problem(settings.redis_url, settings.queue_redis_url):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    # A port named on the command line is that port or none; the setting is where to start.
    exact = args.metrics_port is not None
    return worker_main.run(settings, args.metrics_host, port, exact_port=exact)


def _loadtest(args: argparse.Namespace) -> int:
    try:
        from app.loadtest import main as loadtest  # only this command needs the load generator
    except ModuleNotFoundError as exc:
        if exc.name != "hdrh":
            raise
        print("error: holds loadtest needs the loadtest extra: pip install 'holds[loadtest]'",
              file=sys.stderr)  # fmt: skip
        return 2

    try:
        test = _load_test(args, loadtest)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return loadtest.run(test)


def _load_test(args: argparse.Namespace, loadtest: ModuleType) -> Any:
    """The LoadTest the flags describe, or ValueError saying which flag is wrong."""
    if args.ramp:
        if args.rate is not None or args.duration is not None:
            raise ValueError("--ramp replaces --rate and --duration; give one or the other")
        ramp = loadtest.Ramp.parse(args.ramp, args.ramp_by)
        rates, seconds = ramp.rates(), ramp.step_seconds
    elif args.rate is None or args.duration is None:
        raise ValueError("give --rate and --duration, or --ramp FROM:TO:STEP_SECONDS")
    elif args.rate <= 0 or args.duration <= 0:
        raise ValueError("--rate and --duration must be positive")
    else:
        rates, seconds = [args.rate], args.duration
    if args.ramp and not args.threshold:
        raise ValueError("--ramp needs at least one --threshold to find the knee by")
    if not 0 <= args.contention <= 1 or args.processes < 1 or args.days < 1 or args.warmup < 0:
        raise ValueError("--contention must be 0-1, --processes and --days at least 1, "
                         "--warmup not negative")  # fmt: skip
    try:
        mix = loadtest.Mix.parse(args.mix)
    except ValueError as exc:
        raise ValueError(f"--mix: {exc}") from None
    return loadtest.LoadTest(
        url=args.url,
        keys=args.key,
        rates=rates,
        step_seconds=seconds,
        contention=args.contention,
        mix=mix,
        days=args.days,
        timezone=args.timezone,
        json_path=args.json,
        plot_path=args.plot,
        seed=args.seed,
        processes=args.processes,
        thresholds=[loadtest.Threshold.parse(rule) for rule in args.threshold],
        warmup_seconds=args.warmup,
    )


def _serve(args: argparse.Namespace) -> int:
    settings = Settings()
    if args.processes is not None:
        return _serve_group(args, settings)
    from aiohttp import web

    from app.embedded_redis import EmbeddedRedis
    from app.store.redis_client import queue_problem
    from app.web.app import create_app

    if args.child_of is not None:
        from app import prefork  # only a --processes child needs it

        prefork.tie_to_parent(args.child_of)
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": embedded.start()})
        print(f"embedded redis-server on {settings.redis_url} (data in {embedded.directory})")
    elif problem := queue_problem(settings.redis_url, settings.queue_redis_url):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        demo_key = _prepare_demo() if args.demo else None
        _use_uvloop()
        app = create_app(settings, with_worker=embedded is not None, demo_key=demo_key)
        if args.child_of is None:
            print(f"holds API on http://{args.host}:{args.port}{settings.base_path}", flush=True)
            if demo_key is not None:
                print(f"demo booking page on http://{args.host}:{args.port}/demo/", flush=True)
        else:
            app.on_response_prepare.append(_process_id_header)
        app.on_startup.append(_freeze_startup_heap)
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            reuse_port=args.reuse_port,
            print=None,
            access_log=None,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _serve_group(args: argparse.Namespace, settings: Settings) -> int:
    """`holds serve --processes N`: see app/prefork.py."""
    from app import prefork
    from app.embedded_redis import EmbeddedRedis
    from app.store.redis_client import queue_problem

    if args.processes < 1:
        print("error: --processes must be at least 1", file=sys.stderr)
        return 2
    if settings.redis_url and (
        problem := queue_problem(settings.redis_url, settings.queue_redis_url)
    ):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if not prefork.port_is_free(args.host, args.port):
        print(f"error: {args.host}:{args.port} is in use by another program", file=sys.stderr)
        return 1
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": embedded.start()})
        print(f"embedded redis-server on {settings.redis_url} (data in {embedded.directory})")
    try:
        # Each child migrates at start, as every `holds serve` does (safe when several start at
        # once); the parent does so first only when its own worker or the demo needs the schema.
        if args.demo:
            _prepare_demo()
        elif embedded is not None:
            _with_database(_migrated)
        env = os.environ | {"HOLDS_REDIS_URL": settings.redis_url}
        group = prefork.Group(prefork.child_command(args.host, args.port), args.processes, env)
        worker = None
        if embedded is not None:  # the group's one worker, with its endpoint as `holds worker`'s
            from workers import main as worker_main

            async def worker(stopping: asyncio.Event) -> None:
                port = settings.worker_metrics_port
                await worker_main.serve_worker(settings, stopping, "127.0.0.1", port)

        where = f"http://{args.host}:{args.port}{settings.base_path}"
        print(f"holds API on {where} ({args.processes} processes)", flush=True)
        return asyncio.run(prefork.run(group, worker))
    finally:
        if embedded is not None:
            embedded.stop()


async def _migrated(sessions: async_sessionmaker[AsyncSession]) -> None:
    del sessions  # _with_database has migrated; that is all this step needs


async def _process_id_header(request: web.Request, response: web.StreamResponse) -> None:
    """Which API process of a --processes group answered: shows how connections spread."""
    response.headers["X-Holds-Process"] = str(os.getpid())


async def _freeze_startup_heap(app: object) -> None:
    """What is alive once the service has started (modules, models, pools) lives as long as
    the process: moved out of the garbage collector's sight, the full collections that request
    garbage sets off no longer walk it (see README, performance)."""
    gc.collect()
    gc.freeze()


def _use_uvloop() -> None:
    """uvloop's event loop serves more requests per core than asyncio's own (see README)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _prepare_demo() -> str:
    from app.catalog.loader import load_catalog
    from app.db import keys_repo

    demo = resources.files("app.catalog").joinpath("demo.json")

    async def prepare(sessions: async_sessionmaker[AsyncSession]) -> str:
        await load_catalog(sessions, demo.read_text(encoding="utf-8"))
        async with sessions.begin() as session:
            new = await keys_repo.create_key(
                session, DEMO_ORG_ID, list(keys_repo.SCOPES), "demo", test=True
            )
        return new.secret

    key = _with_database(prepare)
    print(f"demo catalog loaded; demo API key (every scope): {key}", flush=True)
    return key
