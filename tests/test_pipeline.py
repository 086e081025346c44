"""The auto-pipelining Redis client of the request path, against a real redis-server.

Each scenario runs on both event loops the service may use: asyncio's own (tests, `create_app`
embedded elsewhere) and uvloop (`holds serve`), whose transports behave differently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvloop
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.embedded_redis import free_port
from app.store.pipeline import AutoPipeline
from tests.servers import DeployedRedis

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    return asyncio.run if request.param == "asyncio" else uvloop.run  # type: ignore[no-any-return]


@pytest.fixture
def killable_redis(tmp_path: Path) -> Iterator[DeployedRedis]:
    server = DeployedRedis(tmp_path)
    asyncio.run(server.start())
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


def _writes() -> float:
    return REGISTRY.get_sample_value("holds_redis_pipeline_batch_commands_count") or 0.0


def test_concurrent_commands_share_one_write_and_get_their_own_replies(
    run: Runner, redis_url: str
) -> None:
    async def scenario() -> tuple[list[Any], float]:
        client = AutoPipeline(redis_url)
        await client.execute("PING")  # connected before the burst
        before = _writes()
        replies = await asyncio.gather(
            *(client.execute("INCRBY", f"counter:{n % 3}", n) for n in range(300))
        )
        writes = _writes() - before
        await client.aclose()
        return replies, writes

    replies, writes = run(scenario())
    assert writes == 1
    running = [0, 0, 0]
    for n, reply in enumerate(replies):
        running[n % 3] += n
        assert reply == running[n % 3]  # replies matched to their commands, in order


def test_an_error_reply_fails_only_its_own_command(run: Runner, redis_url: str) -> None:
    async def scenario() -> list[Any]:
        client = AutoPipeline(redis_url)
        await client.execute("SET", "text", "not a hash")
        replies = await asyncio.gather(
            client.execute("INCR", "n"),
            client.execute("HGET", "text", "field"),
            client.execute("INCR", "n"),
            return_exceptions=True,
        )
        await client.aclose()
        return replies

    first, wrong_type, second = run(scenario())
    assert (first, second) == (1, 2)
    assert isinstance(wrong_type, ResponseError)
    assert "WRONGTYPE" in str(wrong_type)


def test_scripts_survive_redis_forgetting_them(run: Runner, redis_url: str) -> None:
    async def scenario() -> list[Any]:
        client = AutoPipeline(redis_url)
        echo = client.register_script("return {KEYS[1], ARGV[1]}")
        first = await echo(keys=["k"], args=[1])
        await client.execute("SCRIPT", "FLUSH")
        second = await echo(keys=["k"], args=[2])
        third = await echo(keys=["k"], args=[3])  # cached again by the EVAL
        await client.aclose()
        return [first, second, third]

    assert run(scenario()) == [[b"k", b"1"], [b"k", b"2"], [b"k", b"3"]]


def test_the_database_number_in_the_url_is_selected(run: Runner, redis_url: str) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/5"

    async def scenario() -> None:
        client = AutoPipeline(url)
        await client.execute("SET", "where", "db5")
        await client.aclose()

    run(scenario())
    assert redis.Redis.from_url(url).get("where") == b"db5"
    assert redis.Redis.from_url(redis_url).get("where") is None


def test_a_password_in_the_url_is_sent_and_a_wrong_one_is_a_connection_error(
    run: Runner, tmp_path: Path
) -> None:
    server = DeployedRedis(tmp_path, password="s3cret")
    asyncio.run(server.start())

    async def scenario(url: str) -> Any:
        client = AutoPipeline(url)
        try:
            return await client.execute("PING")
        finally:
            await client.aclose()

    try:
        assert run(scenario(server.url)) == b"PONG"
        with pytest.raises(RedisConnectionError):
            run(scenario(server.url.replace("s3cret", "wrong")))
    finally:
        server.kill()


def test_an_unreachable_redis_is_a_connection_error(run: Runner) -> None:
    async def scenario() -> None:
        client = AutoPipeline(f"redis://127.0.0.1:{free_port()}/0")
        await client.execute("PING")

    with pytest.raises(RedisConnectionError):
        run(scenario())


def test_a_late_reply_times_out_and_the_next_command_reconnects(
    run: Runner, redis_url: str
) -> None:
    async def scenario() -> tuple[float, Any]:
        client = AutoPipeline(redis_url, reply_timeout=0.4)
        began = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await client.execute("BLPOP", "never-filled", 0)  # holds the connection's reply
        waited = time.monotonic() - began
        after = await client.execute("PING")
        await client.aclose()
        return waited, after

    waited, after = run(scenario())
    assert 0.4 <= waited < 2
    assert after == b"PONG"


def test_redis_dying_fails_what_is_in_flight_and_a_restart_is_picked_up(
    run: Runner, killable_redis: DeployedRedis
) -> None:
    async def scenario() -> None:
        client = AutoPipeline(killable_redis.url)
        in_flight = asyncio.ensure_future(client.execute("BLPOP", "never-filled", 0))
        await asyncio.sleep(0.2)
        killable_redis.kill()
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(in_flight, 5)
        with pytest.raises(RedisConnectionError):
            await client.execute("PING")  # down: a clear error, not a hang
        await killable_redis.start()
        assert await client.execute("PING") == b"PONG"
        await client.aclose()

    run(scenario())
