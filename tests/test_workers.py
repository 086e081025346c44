"""The workers: every confirmed appointment becomes one SQL row; expired holds are cleaned up."""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis.asyncio as aioredis

from app.ids import shard_tag
from app.store import keys
from app.web.state import APPOINTMENTS
from tests.catalog import AMARA, ORG, PATIENT
from tests.conftest import Api, MakeApi, StartWorker, eventually, sql_rows
from tests.helpers import confirm_body, hold_body, holds_in_one_diary
from workers import expiry


async def _book(api: Api, start_time: str = "09:00") -> dict[str, Any]:
    status, hold = await api.call("POST", "/holds", hold_body(start_time))
    assert status == 201, hold
    status, appointment = await api.call(
        "POST", f"/holds/{hold['data']['id']}/confirm", confirm_body()
    )
    assert status == 201, appointment
    data: dict[str, Any] = appointment["data"]
    return data


async def _rows(api: Api, appointment_id: str) -> list[Any]:
    return await sql_rows(
        api.settings.effective_database_url,
        "SELECT status, version, conflict_with FROM appointments WHERE id = :id",
        id=appointment_id,
    )


async def _persisted(api: Api, appointment_id: str) -> bool:
    _, body = await api.call("GET", f"/appointments/{appointment_id}")
    return bool(body["data"]["persisted"])


async def test_confirmed_appointment_becomes_one_sql_row(
    api: Api, start_worker: StartWorker
) -> None:
    start_worker()
    appointment = await _book(api)
    await eventually(lambda: _persisted(api, appointment["id"]))
    rows = await _rows(api, appointment["id"])
    assert [(row.status, row.version) for row in rows] == [("confirmed", 1)]


async def test_persisting_twice_writes_one_row(api: Api) -> None:
    appointment = await _book(api)
    service = api.client.app[APPOINTMENTS]  # type: ignore[index]
    await service.persist(appointment["id"])
    await service.persist(appointment["id"])
    assert len(await _rows(api, appointment["id"])) == 1


async def test_reconciler_persists_what_no_job_was_queued_for(
    api: Api, start_worker: StartWorker
) -> None:
    appointment = await _book(api)
    queue = aioredis.Redis.from_url(api.settings.redis_url)
    await queue.delete(*[key async for key in queue.scan_iter("arq:*")])  # the job is lost
    await queue.aclose()
    start_worker()
    await eventually(lambda: _persisted(api, appointment["id"]), within=30)
    assert len(await _rows(api, appointment["id"])) == 1


async def test_cancel_frees_the_slot_at_once_and_is_idempotent(api: Api) -> None:
    appointment = await _book(api)
    path = f"/appointments/{appointment['id']}/cancel"
    status, first = await api.call("POST", path, {"reason": "Feeling better"})
    assert status == 200
    assert first["data"]["status"] == "cancelled"
    assert first["data"]["cancellation_reason"] == "Feeling better"
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
    status, second = await api.call("POST", path, {})
    assert (status, second["data"]) == (200, first["data"])


async def test_cancellation_reaches_sql(api: Api, start_worker: StartWorker) -> None:
    start_worker()
    appointment = await _book(api)
    await api.call("POST", f"/appointments/{appointment['id']}/cancel", {})

    async def cancelled_in_sql() -> bool:
        rows = await _rows(api, appointment["id"])
        return bool(rows) and rows[0].status == "cancelled"

    await eventually(cancelled_in_sql)
    assert [(row.status, row.version) for row in await _rows(api, appointment["id"])] == [
        ("cancelled", 2)
    ]


async def test_unknown_appointment_cannot_be_cancelled(api: Api) -> None:
    path = "/appointments/apt_00000000-0000-4000-8000-000000000000/cancel"
    status, body = await api.call("POST", path, {})
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_appointments_are_listed_with_filters(api: Api, start_worker: StartWorker) -> None:
    start_worker()
    first, second = await _book(api, "09:00"), await _book(api, "10:00")
    await api.call("POST", f"/appointments/{second['id']}/cancel", {})
    await eventually(lambda: _persisted(api, second["id"]))
    await eventually(lambda: _persisted(api, first["id"]))
    _, everything = await api.call("GET", "/appointments?limit=1")
    assert everything["pagination"] == {"total": 2, "limit": 1, "offset": 0, "has_more": True}
    assert everything["data"][0]["id"] == first["id"]
    _, cancelled = await api.call("GET", "/appointments?status=cancelled")
    assert [a["id"] for a in cancelled["data"]] == [second["id"]]
    _, by_patient = await api.call(
        "GET", f"/appointments?patient_id={PATIENT}&start_date=2030-07-01&end_date=2030-07-01"
    )
    assert by_patient["pagination"]["total"] == 2
    _, elsewhere = await api.call("GET", "/appointments?start_date=2030-07-02")
    assert elsewhere["data"] == []


async def _book_then_lose_redis(api: Api) -> dict[str, Any]:
    """Book, wait until SQL has it, then empty Redis as a crash without persistence would."""
    appointment = await _book(api)
    await eventually(lambda: _persisted(api, appointment["id"]))
    client = aioredis.Redis.from_url(api.settings.redis_url)
    await client.flushall()
    await client.aclose()
    return appointment


async def test_after_redis_loses_everything_appointments_still_block_and_read(
    api: Api, start_worker: StartWorker
) -> None:
    start_worker()
    appointment = await _book_then_lose_redis(api)
    status, fetched = await api.call("GET", f"/appointments/{appointment['id']}")
    assert (status, fetched["data"]["status"]) == (200, "confirmed")
    status, refused = await api.call("POST", "/holds", hold_body("09:00"))
    assert (status, refused["error"]["code"]) == (409, "slot_unavailable")


async def test_availability_after_redis_loss_hides_booked_slots(
    api: Api, start_worker: StartWorker
) -> None:
    start_worker()
    appointment = await _book_then_lose_redis(api)
    query = "/availability?appointment_type_id={}&start_date=2030-07-01&end_date=2030-07-01"
    _, slots = await api.call("GET", query.format(appointment["appointment_type_id"]))
    assert appointment["start_time"] not in [slot["start_time"] for slot in slots["data"]]


async def test_expired_hold_is_cleaned_up_by_the_worker(
    make_api: MakeApi, start_worker: StartWorker
) -> None:
    api = await make_api(hold_ttl_seconds=2)
    start_worker()
    _, hold = await api.call("POST", "/holds", hold_body())
    await _cleaned(api, hold["data"]["id"])


async def test_sweeper_cleans_up_without_keyspace_events(
    make_api: MakeApi, start_worker: StartWorker
) -> None:
    api = await make_api(hold_ttl_seconds=2)
    start_worker()
    client = aioredis.Redis.from_url(api.settings.redis_url)
    await client.config_set("notify-keyspace-events", "")
    await client.aclose()
    _, hold = await api.call("POST", "/holds", hold_body())
    await _cleaned(api, hold["data"]["id"])


async def test_two_workers_clean_a_burst_of_expiries_once_each(
    api: Api, start_worker: StartWorker
) -> None:
    """Several batches of one diary expiring in the same second, two workers sweeping it at
    once: every hold ends expired, its slot free, with exactly one hold.expired event."""
    tag = shard_tag(ORG, AMARA)
    client = aioredis.Redis.from_url(api.settings.redis_url, decode_responses=True)
    hold_ids = await holds_in_one_diary(client, 2 * expiry.BATCH + 50, ttl_seconds=3)
    start_worker(), start_worker()

    async def all_cleaned() -> bool:
        return await client.zcard(keys.expiries(tag)) == 0

    await eventually(all_cleaned, within=10)
    for hold_id in hold_ids[:: expiry.BATCH // 4]:
        _, body = await api.call("GET", f"/holds/{hold_id}")
        assert body["data"]["status"] == "expired"
    assert await client.zcard(keys.occupancy(tag, AMARA)) == 0
    entries = await client.xrange(keys.events(tag))
    expired = Counter(subject for _, fields in entries if fields["_event"] == "hold.expired"
                      for subject in fields["_subjects"].split(" "))  # fmt: skip
    assert expired == Counter(hold_ids)
    await client.aclose()


async def _cleaned(api: Api, hold_id: str) -> None:
    client = aioredis.Redis.from_url(api.settings.redis_url, decode_responses=True)
    tag = hold_id[5:9]

    async def done() -> bool:
        return await client.zscore(keys.expiries(tag), hold_id) is None

    await eventually(done, within=6)
    _, body = await api.call("GET", f"/holds/{hold_id}")
    assert body["data"]["status"] == "expired"
    [[_, fields]] = [entry for entry in await client.xrange(keys.events(tag))
                     if entry[1]["_event"] == "hold.expired"]  # fmt: skip
    assert fields == {"_event": "hold.expired", "_subjects": hold_id, "status": "expired"}
    occupancy = [k async for k in client.scan_iter(f"holds:{{{tag}}}:occ:*")]
    assert [await client.zcard(k) for k in occupancy] == [0] * len(occupancy)
    await client.aclose()


async def test_metrics_report_holds_and_backlogs(api: Api) -> None:
    await _book(api)
    response = await api.client.get("/metrics")
    text = await response.text()
    assert response.status == 200
    for name in (
        "holds_created_total",
        "holds_confirmed_total",
        "holds_http_request_duration_seconds_bucket",
        "holds_persistence_backlog 1.0",
        "holds_queue_depth 1.0",
        "holds_active",
        "holds_expiry_cleanup_lag_seconds",
    ):
        assert name in text, name
