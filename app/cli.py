"""The `holds` command: serve the API, load catalogs, manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import logs
from app.catalog.loader import load_catalog, read_catalog_file
from app.config import Settings
from app.db import keys_repo
from app.db.engine import create_engine, migrate, session_factory
from app.embedded_redis import EmbeddedRedis
from app.errors import CatalogError
from app.store.redis_client import queue_problem
from app.web.app import create_app

T = TypeVar("T")
DEMO_ORG_ID = "org_5f0c1d2e-e89b-12d3-a456-426614170000"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(Settings().log_level)
    try:
        result: int = args.run(args)
        return result
    except (CatalogError, keys_repo.KeyCommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


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
    serve.set_defaults(run=_serve)

    migrate_command = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_command.set_defaults(run=_migrate)

    worker = commands.add_parser("worker", help="run an arq worker (any number may run)")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.add_argument(
        "--metrics-port", type=int, help="Prometheus endpoint (default HOLDS_WORKER_METRICS_PORT)"
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 if a worker reported healthy recently"
    )
    worker.set_defaults(run=_worker)

    load = commands.add_parser("loadtest", help="drive the booking flow at a constant rate")
    load.add_argument(
        "--url", required=True, help="the API base URL, e.g. http://127.0.0.1:8080/v1"
    )
    load.add_argument("--key", required=True, action="append", help="API key (repeat for several)")
    load.add_argument("--rate", type=float, required=True, help="flows started per second")
    load.add_argument("--duration", type=float, required=True, help="seconds")
    load.add_argument("--contention", type=float, default=0.0,
                      help="share of flows aiming at the same few slots (0-1)")  # fmt: skip
    load.add_argument("--mix", default="confirm=0.5,release=0.3,abandon=0.2")
    load.add_argument("--days", type=int, default=14, help="how many days of slots to book")
    load.add_argument("--timezone", default="Europe/London", help="the organisation's timezone")
    load.add_argument("--json", type=Path, help="write the report as JSON")
    load.add_argument("--plot", type=Path, help="write latency over time as an HTML page")
    load.add_argument("--seed", type=int, default=0)
    load.set_defaults(run=_loadtest)

    catalog = commands.add_parser("catalog", help="manage the catalog")
    catalog_commands = catalog.add_subparsers(required=True, metavar="ACTION")
    load = catalog_commands.add_parser("load", help="create or update entries from a JSON file")
    load.add_argument("file", type=Path)
    load.set_defaults(run=_catalog_load)

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
    return parser


def _with_database(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = create_engine(Settings().effective_database_url)
        try:
            await migrate(engine)
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _migrate(args: argparse.Namespace) -> int:
    async def nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
        del sessions  # _with_database has migrated; that is all this command does

    _with_database(nothing)
    print("database schema is up to date")
    return 0


def _catalog_load(args: argparse.Namespace) -> int:
    text = read_catalog_file(args.file)
    for line in _with_database(lambda sessions: load_catalog(sessions, text)):
        print(line)
    return 0


def _keys_create(args: argparse.Namespace) -> int:
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
    async def revoke(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with sessions.begin() as session:
            row = await keys_repo.revoke_key(session, args.key)
            return row.prefix

    print(f"revoked {_with_database(revoke)}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from workers import main as worker_main  # only this command needs the worker code

    settings = Settings()
    if not settings.redis_url:
        print(
            "error: holds worker needs HOLDS_REDIS_URL "
            "(holds serve without it runs its own worker in process)",
            file=sys.stderr,
        )
        return 2
    if problem := queue_problem(settings.redis_url, settings.queue_redis_url):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.check:
        return worker_main.check(settings)
    port = settings.worker_metrics_port if args.metrics_port is None else args.metrics_port
    return worker_main.run(settings, args.metrics_host, port)


def _loadtest(args: argparse.Namespace) -> int:
    from app.loadtest import main as loadtest  # only this command needs the load generator

    if args.rate <= 0 or args.duration <= 0 or not 0 <= args.contention <= 1:
        print("error: --rate and --duration must be positive, --contention 0-1", file=sys.stderr)
        return 2
    try:
        mix = loadtest.Mix.parse(args.mix)
    except ValueError as exc:
        print(f"error: --mix: {exc}", file=sys.stderr)
        return 2
    return loadtest.run(
        loadtest.LoadTest(
            url=args.url,
            keys=args.key,
            rate=args.rate,
            duration=args.duration,
            contention=args.contention,
            mix=mix,
            days=args.days,
            timezone=args.timezone,
            json_path=args.json,
            plot_path=args.plot,
            seed=args.seed,
        )
    )


def _serve(args: argparse.Namespace) -> int:
    settings = Settings()
    embedded = None
    if not settings.redis_url:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        settings = settings.model_copy(update={"redis_url": embedded.start()})
        print(f"embedded redis-server on {settings.redis_url} (data in {embedded.directory})")
    elif problem := queue_problem(settings.redis_url, settings.queue_redis_url):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.demo:
            _prepare_demo()
        _use_uvloop()
        app = create_app(settings, with_worker=embedded is not None)
        print(f"holds API on http://{args.host}:{args.port}{settings.base_path}", flush=True)
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


def _use_uvloop() -> None:
    """uvloop's event loop serves more requests per core than asyncio's own (see README)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop wheels
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _prepare_demo() -> None:
    demo = resources.files("app.catalog").joinpath("demo.json")

    async def prepare(sessions: async_sessionmaker[AsyncSession]) -> str:
        await load_catalog(sessions, demo.read_text(encoding="utf-8"))
        async with sessions.begin() as session:
            new = await keys_repo.create_key(
                session, DEMO_ORG_ID, list(keys_repo.SCOPES), "demo", test=True
            )
        return new.secret

    print(f"demo catalog loaded; demo API key (every scope): {_with_database(prepare)}", flush=True)
