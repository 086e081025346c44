"""The cache in front of API keys and catalogs: one fetch at a time, and no caller waits while
a fresh-enough answer is held. Pure logic, so the fetch here is a counting function."""

from __future__ import annotations

import asyncio

import pytest

from app.refresh_ahead import RefreshAheadCache

MAX_AGE = 0.4


class Source:
    """Answers `version N` for the Nth fetch, after `delay` seconds, or raises `error`."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.fetches = 0
        self.error: Exception | None = None

    async def fetch(self, key: str, cached: str | None) -> str:
        self.fetches += 1
        number = self.fetches
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return f"{key} version {number}"


async def test_concurrent_callers_with_nothing_cached_share_one_fetch() -> None:
    source = Source()
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    answers = await asyncio.gather(*(cache.get("org") for _ in range(50)))
    assert set(answers) == {"org version 1"}
    assert source.fetches == 1


async def test_a_fresh_answer_is_served_without_fetching() -> None:
    source = Source()
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    await cache.get("org")
    assert await cache.get("org") == "org version 1"
    assert source.fetches == 1


async def test_past_half_its_age_the_answer_is_served_while_one_refresh_runs() -> None:
    source = Source(delay=0.1)
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    await cache.get("org")
    await asyncio.sleep(MAX_AGE * 0.6)
    answers = await asyncio.wait_for(
        asyncio.gather(*(cache.get("org") for _ in range(20))), timeout=0.05
    )
    assert set(answers) == {"org version 1"}  # nobody waited for the database
    await asyncio.sleep(0.15)
    assert await cache.get("org") == "org version 2"
    assert source.fetches == 2


async def test_an_answer_older_than_max_age_is_never_served() -> None:
    source = Source()
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    await cache.get("org")
    await asyncio.sleep(MAX_AGE + 0.05)
    assert await cache.get("org") == "org version 2"


async def test_a_caller_giving_up_does_not_cancel_the_fetch_others_wait_on() -> None:
    source = Source(delay=0.1)
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    impatient = asyncio.create_task(cache.get("org"))
    patient = asyncio.create_task(cache.get("org"))
    await asyncio.sleep(0.02)
    impatient.cancel()
    assert await patient == "org version 1"
    assert source.fetches == 1


async def test_a_failed_refresh_keeps_the_answer_until_max_age_then_callers_see_the_error() -> None:
    source = Source(delay=0.01)
    cache = RefreshAheadCache(source.fetch, MAX_AGE)
    await cache.get("org")
    source.error = ConnectionError("database down")
    await asyncio.sleep(MAX_AGE * 0.6)
    assert await cache.get("org") == "org version 1"  # starts a refresh, which fails
    await asyncio.sleep(0.05)
    assert await cache.get("org") == "org version 1"
    await asyncio.sleep(MAX_AGE * 0.5)
    with pytest.raises(ConnectionError):
        await cache.get("org")
