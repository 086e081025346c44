"""Engines for `sqlite:///` and `postgresql://` URLs, and schema migration at start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant: serialises concurrent `alembic upgrade` runs of several API processes.
_MIGRATION_LOCK_ID = 7_201_117


def async_url(url: str) -> str:
    """The same database URL with its asyncio driver (aiosqlite or asyncpg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")


def create_engine(url: str) -> AsyncEngine:
    engine_url = async_url(url)
    if engine_url.startswith("sqlite"):
        database = make_url(engine_url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(engine_url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "handle_error", _keep_sqlite_connection_when_cancelled)
        return engine
    return create_async_engine(engine_url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _tune_sqlite(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _keep_sqlite_connection_when_cancelled(context: ExceptionContext) -> None:
    """Roll back a transaction whose statement was cut short by cancellation (a job's timeout,
    a worker stopping when Redis goes away) instead of closing its connection.

    SQLAlchemy treats a cancellation mid-statement as a lost connection and closes it without a
    rollback. SQLite cannot close a connection whose statement has unread rows: it keeps the
    connection, its transaction and the database's write lock for as long as that statement
    object lives, so every later write waits out its busy timeout and fails, indefinitely.
    Nothing is lost on an in-process connection (aiosqlite finishes the statement on its own
    thread), so the cancellation is handled like any other error: the cursor is closed, the
    transaction rolled back and the connection pooled again."""
    if isinstance(context.original_exception, asyncio.CancelledError):
        context.is_disconnect = False


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the latest revision; safe when several processes start at once."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
        await connection.run_sync(_upgrade)
