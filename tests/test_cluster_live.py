"""This round's scripts and events on a Redis Cluster: group seats, extend, the status stream,
and webhooks delivered by a worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.catalog import BACK_CARE_CLASS, FOLLOW_UP, TOM
from tests.conftest import MakeApi, StartWorker
from tests.helpers import confirm_body, hold_body
from tests.test_hold_events import _epoch, _open, _sleep_until
from tests.webhook_receiver import Receiver

SEATS = 6  # the demo's back-care class


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def test_racing_holds_fill_exactly_a_sessions_seats_on_a_cluster(
    make_cluster_api: MakeApi,
) -> None:
    first, second = await make_cluster_api(), await make_cluster_api()
    body = hold_body("10:00", kind=BACK_CARE_CLASS)
    statuses = await asyncio.gather(
        *(api.call("POST", "/holds", body) for api in [first, second] * (3 * SEATS // 2))
    )
    assert sorted(status for status, _ in statuses) == [201] * SEATS + [409] * (2 * SEATS)


async def test_extend_and_its_event_reach_the_stream_on_a_cluster(
    make_cluster_api: MakeApi,
) -> None:
    api = await make_cluster_api()
    _, created = await api.call("POST", "/holds", hold_body("09:00"))
    hold = created["data"]
    stream = await _open(api, hold["id"], secret=hold["client_secret"])
    assert (await stream.hold())["status"] == "active"
    await _sleep_until(_epoch(hold["created_at"]) + 1.05)  # a later expiry exists only then
    status, extended = await api.call("POST", f"/holds/{hold['id']}/extend", {})
    assert status == 200
    assert await stream.hold(within=1.5) == extended["data"]
    await api.call("POST", f"/holds/{hold['id']}/confirm", confirm_body())
    assert (await stream.hold(within=1.5))["status"] == "confirmed"
    assert await stream.next() == {}


async def test_webhooks_are_delivered_from_every_masters_outbox(
    make_cluster_api: MakeApi, start_worker: StartWorker, receiver: Receiver
) -> None:
    api = await make_cluster_api(webhook_allow_private_targets=True)
    status, endpoint = await api.call("POST", "/webhook-endpoints", {"url": receiver.url})
    assert status == 201
    receiver.secret = endpoint["data"]["secret"]
    start_worker(
        redis=api.settings.redis_url,
        queue_redis_url=api.settings.queue_redis_url,
        webhook_allow_private_targets="true",
    )
    _, hold = await api.call("POST", "/holds", hold_body("09:00"))
    await _sleep_until(_epoch(hold["data"]["created_at"]) + 1.05)
    await api.call("POST", f"/holds/{hold['data']['id']}/extend", {})
    _, booked = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    await api.call("POST", f"/appointments/{booked['data']['id']}/cancel", {})
    # Tom's diary lives on another master (tests/test_cluster_workers.py shows which).
    await api.call(
        "POST", "/holds", hold_body("10:00", kind=FOLLOW_UP, clinician=TOM, location=None)
    )
    delivered = await receiver.wait_for(6, within=30)
    assert sorted(d.event["type"] for d in delivered) == [
        "appointment.cancelled", "appointment.created", "hold.confirmed", "hold.created",
        "hold.created", "hold.extended",
    ]  # fmt: skip
