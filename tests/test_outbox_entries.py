"""Outbox entries as the scripts write them, and as entries of the earlier format that may still
wait in an outbox after an upgrade: both read as the same event."""

from __future__ import annotations

import json

import redis.asyncio as redis

from app.events import outbox
from app.ids import tag_of
from app.store import keys
from tests.conftest import Api
from tests.helpers import hold_body


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
        assert outbox.subject_of(flat) == hold_id
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
        assert outbox.subject_of(legacy_fields) == hold_id
    finally:
        await client.aclose()
