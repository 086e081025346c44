"""Outbox entries as the scripts write them, and as entries of the earlier format that may still
wait in an outbox after an upgrade: both read as the same event."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
import redis.asyncio as redis

import workers.outbox
from app.catalog.cache import CatalogCache
from app.events import outbox
from app.ids import tag_of
from app.store import keys
from app.web.state import HOLD_STREAMS
from tests.conftest import Api, MakeApi, sql_rows
from tests.helpers import hold_body, holds_in_one_diary
from workers.context import WorkerContext
from workers.outbox import OutboxMover


async def test_an_entry_carries_the_record_as_it_was_and_the_earlier_format_reads_the_same(
    api: Api, redis_url: str
) -> None:
    status, body = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 201, body
    hold_id = body["data"]["id"]
    client = redis.Redis.from_url(redis_url)
    try:
        record = await client.hgetall(keys.hold(hold_id))
        stream = keys.events(tag_of(hold_id))
        [(entry_id, fields)] = [
            (entry_id, fields)
            for entry_id, fields in await client.xrange(stream)
            if fields.get(b"_subject") == hold_id.encode()
        ]
        flat = [item for pair in fields.items() for item in pair]
        event = outbox.from_entry(entry_id, flat)
        assert (event.type, event.id) == ("hold.created", hold_id)
        assert outbox.subjects_of(flat) == [hold_id]
        assert event.record == {k.decode(): v.decode() for k, v in record.items()}

        pairs = [item.decode() for pair in record.items() for item in pair]
        legacy_id = await client.xadd(
            stream, {"type": "hold.created", "id": hold_id, "record": json.dumps(pairs)}
        )
        legacy_fields = [
            item
            for pair in (await client.xrange(stream, legacy_id, legacy_id))[0][1].items()
            for item in pair
        ]
        legacy = outbox.from_entry(legacy_id, legacy_fields)
        assert (legacy.type, legacy.id, legacy.record) == (event.type, event.id, event.record)
        assert outbox.subjects_of(legacy_fields) == [hold_id]
    finally:
        await client.aclose()


async def test_an_expiry_entry_carries_only_the_change_and_each_hold_is_recorded_whole(
    make_api: MakeApi,
) -> None:
    """One entry records every expiry of a cleanup call; each hold's record completes its
    event, or, once Redis has dropped the record (workers away for longer than the
    retention), the hold's previous event does."""
    api = await make_api(hold_ttl_seconds=1)
    worker = await WorkerContext.open(api.settings)
    mover = OutboxMover(worker, CatalogCache(worker.sessions, 0))
    client = redis.Redis.from_url(api.settings.redis_url)
    try:
        held = [
            (await api.call("POST", "/holds", hold_body(at)))[1]["data"]
            for at in ("09:00", "10:00")
        ]
        assert await mover.move_once() == 2  # their hold.created events
        tag = tag_of(held[0]["id"])
        await asyncio.sleep(2)
        assert len((await worker.upkeep.expire_due(tag, 10))[1]) == 2

        # One entry for both expiries: their ids and the change, no record.
        [expiry] = [fields for _, fields in await client.xrange(keys.events(tag))
                    if fields[b"_event"] == b"hold.expired"]  # fmt: skip
        assert list(expiry) == [b"_event", b"_subjects", b"status"]
        assert sorted(expiry[b"_subjects"].decode().split(" ")) == sorted(h["id"] for h in held)
        assert expiry[b"status"] == b"expired"
        await client.delete(keys.hold(held[1]["id"]))  # as Redis does after the retention
        assert await mover.move_once() == 2

        recorded = await sql_rows(
            api.settings.effective_database_url,
            "SELECT subject_id, data FROM events WHERE type = 'hold.expired'",
        )
        data = {subject: _json(value) for subject, value in recorded}
        assert len(recorded) == 2
        for hold in held:
            assert data[hold["id"]] == _public(hold) | {"status": "expired"}
    finally:
        await client.aclose()
        await worker.close()


def _public(hold: dict[str, Any]) -> dict[str, Any]:
    """The hold as events carry it: what GET /holds/{id} returns, without its client_secret."""
    return {field: value for field, value in hold.items() if field != "client_secret"}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def test_a_status_stream_applies_an_expiry_to_the_hold_it_shows(api: Api) -> None:
    _, body = await api.call("POST", "/holds", hold_body("09:00"))
    hold_id = body["data"]["id"]
    found = await api.client.app[HOLD_STREAMS].events.hold(hold_id)
    assert found is not None
    shown = found[0]
    expiry = outbox.Event("1796150000000-0", "hold.expired", hold_id, {"status": "expired"})
    assert outbox.is_change_only(expiry)
    assert outbox.hold_after(expiry, shown) == dataclasses.replace(shown, status="expired")


async def test_a_round_moves_whole_entries_up_to_its_limit_and_each_event_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers.outbox, "ROUND_LIMIT", 250)
    worker = await WorkerContext.open(api.settings)
    mover = OutboxMover(worker, CatalogCache(worker.sessions, 0))
    client = redis.Redis.from_url(api.settings.redis_url)
    try:
        hold_ids = await holds_in_one_diary(client, 450, ttl_seconds=1)
        created = [await mover.move_once() for _ in range(12)]  # the hold.created events
        assert sum(created) == 450 and max(created) <= 250 and created[-1] == 0
        await asyncio.sleep(3)
        tag = tag_of(hold_ids[0])
        while (await worker.upkeep.expire_due(tag, 200))[0]:
            pass  # entries of 200, 200 and 50 expiries
        # 200 + 200 would pass the limit: the second entry waits for the next round.
        assert [await mover.move_once() for _ in range(3)] == [200, 250, 0]
        recorded = await sql_rows(
            api.settings.effective_database_url,
            "SELECT subject_id, count(*) FROM events WHERE type = 'hold.expired' "
            "GROUP BY subject_id",
        )
        assert sorted(recorded) == sorted((hold_id, 1) for hold_id in hold_ids)
    finally:
        await client.aclose()
        await worker.close()
