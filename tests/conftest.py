"""Real parts, really started: a redis-server per session, a database per test, the real app."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.catalog.loader import load_catalog
from app.clock import Clock
from app.config import Settings
from app.db import keys_repo
from app.db.engine import create_engine, migrate, session_factory
from app.embedded_redis import EmbeddedRedis
from app.web.app import create_app
from tests.catalog import ORG, OTHER_ORG, demo_plus_test_entries
from tests.cluster import LocalCluster
from tests.servers import DeployedRedis

POSTGRES_URL = os.environ.get("HOLDS_TEST_POSTGRES_URL", "")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


@pytest.fixture
async def deployed_redis(tmp_path: Path) -> Any:
    """A redis-server of its own, configured as deployed, that a test may kill and restart."""
    server = DeployedRedis(tmp_path)
    await server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the HOLDS_TEST_POSTGRES_URL server, dropped after the session."""
    if not POSTGRES_URL:
        pytest.skip("HOLDS_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against")
    name = f"holds_test_{uuid.uuid4().hex[:12]}"
    server = make_url(POSTGRES_URL)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied for this test."""

    async def reset() -> None:
        dsn = make_url(postgres_database).set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    asyncio.run(reset())
    yield postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both engines, for tests of the SQL layer."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'holds.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'holds.sqlite3'}"


@dataclass
class Api:
    """A running app with the test catalog, and keys for calling it."""

    client: TestClient[Any, Any]
    key: str  # every scope, organisation ORG
    other_org_key: str  # every scope, organisation OTHER_ORG
    lacking: dict[str, str]  # scope -> a key of ORG with every scope but that one
    settings: Settings

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any]:
        response = await self.client.request(
            method, self.settings.base_path + path, json=body, headers=self.auth(key)
        )
        return response.status, await response.json()


@dataclass
class SeededKeys:
    key: str
    other_org_key: str
    lacking: dict[str, str]


async def seed_database(database_url: str, catalog: dict[str, Any] | None = None) -> SeededKeys:
    """Migrate, load the test catalog and create the keys the tests call with."""
    engine = create_engine(database_url)
    every_scope = list(keys_repo.SCOPES)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        await load_catalog(sessions, json.dumps(catalog or demo_plus_test_entries()))
        async with sessions.begin() as session:

            async def key(org: str, scopes: list[str]) -> str:
                return (await keys_repo.create_key(session, org, scopes, "test", True)).secret

            return SeededKeys(
                key=await key(ORG, every_scope),
                other_org_key=await key(OTHER_ORG, every_scope),
                lacking={
                    scope: await key(ORG, [s for s in every_scope if s != scope])
                    for scope in every_scope
                },
            )
    finally:
        await engine.dispose()


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api(aiohttp_client: Any, redis_url: str, sqlite_url: str) -> MakeApi:
    """Start the real app on a real Redis; settings and the clock may be overridden."""

    async def make(
        *, clock: Clock | None = None, database_url: str | None = None, **overrides: Any
    ) -> Api:
        url = database_url or sqlite_url
        keys = await seed_database(url)
        settings = Settings(redis_url=redis_url, database_url=url, **overrides)
        client = await aiohttp_client(create_app(settings, clock=clock))
        return Api(client, keys.key, keys.other_org_key, keys.lacking, settings)

    return make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()


WORKER_HEALTH_KEY = "arq:queue:health-check"
StartWorker = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture
def start_worker(redis_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start real `holds worker` processes on the test Redis and database; stopped by PID."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        database_url: str | None = None, redis: str | None = None, **settings: str
    ) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
        env |= {
            "HOLDS_REDIS_URL": redis or redis_url,
            "HOLDS_DATABASE_URL": database_url or sqlite_url,
            "HOLDS_LOG_LEVEL": "WARNING",
        }
        env |= {f"HOLDS_{name.upper()}": value for name, value in settings.items()}
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "worker", "--metrics-port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        # On a cluster the job queue, where workers report health, is a Redis of its own.
        _wait_until_healthy(settings.get("queue_redis_url") or redis or redis_url, process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(redis_url: str, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete(WORKER_HEALTH_KEY)
    deadline = time.monotonic() + 30
    while not client.exists(WORKER_HEALTH_KEY):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("holds worker did not start")
        time.sleep(0.05)
    client.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Wait until `check()` is true; fail the test if it is not within `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.1)


async def sql_rows(database_url: str, query: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(text(query), params))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One Redis Cluster (3 masters, 3 replicas) for the session's cluster tests."""
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    """A node of the session's cluster, every master emptied for this test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
async def make_cluster_api(
    aiohttp_client: Any, cluster_url: str, redis_url: str, sqlite_url: str
) -> MakeApi:
    """The real app on the Redis Cluster, its job queue on the standalone test Redis."""

    async def make(*, clock: Clock | None = None, **overrides: Any) -> Api:
        keys = await seed_database(sqlite_url)
        settings = Settings(
            redis_url=cluster_url, queue_redis_url=redis_url, database_url=sqlite_url, **overrides
        )
        client = await aiohttp_client(create_app(settings, clock=clock))
        return Api(client, keys.key, keys.other_org_key, keys.lacking, settings)

    return make
