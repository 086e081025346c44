"""Webhooks (CONTRACT section 10): endpoints, every event type, signatures, retries, no loss."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from app.config import Settings
from app.web.app import create_app
from tests.catalog import INITIAL as DEMO_INITIAL
from tests.catalog import ORG, SUMMER_MONDAY
from tests.conftest import Api, MakeApi, StartWorker, eventually, seed_database, sql_rows
from tests.helpers import confirm_body, hold_body
from tests.servers import DeployedRedis, demo_server
from tests.webhook_receiver import Receiver

HOLD_FIELDS = {"id", "appointment_type_id", "clinician_id", "location_id", "start_time",
               "end_time", "expires_at", "status", "created_at", "appointment_id"}  # fmt: skip
EVERY_TYPE = [
    "hold.created",
    "hold.extended",
    "hold.released",
    "hold.expired",
    "hold.confirmed",
    "appointment.created",
    "appointment.cancelled",
]
FAST_RETRIES = {"webhook_allow_private_targets": "true", "webhook_timeout_seconds": "1"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


async def _endpoint(api: Api, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    status, body = await api.call("POST", "/webhook-endpoints", {"url": receiver.url} | fields)
    assert status == 201, body
    receiver.secret = body["data"]["secret"]
    return dict(body["data"])


@pytest.fixture
async def private_api(make_api: MakeApi) -> Api:
    """An app that may register loopback endpoints, as a single-host setup would."""
    return await make_api(webhook_allow_private_targets=True)


async def test_an_endpoint_is_created_with_a_secret_shown_once(
    private_api: Api, receiver: Receiver
) -> None:
    created = await _endpoint(private_api, receiver, description="front desk")
    assert created["id"].startswith("whe_")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == EVERY_TYPE
    status, fetched = await private_api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert status == 200 and "secret" not in fetched["data"]
    assert fetched["data"]["description"] == "front desk"
    _, listed = await private_api.call("GET", "/webhook-endpoints")
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert listed["pagination"]["total"] == 1 and "secret" not in listed["data"][0]


async def test_a_deleted_endpoint_is_gone(private_api: Api, receiver: Receiver) -> None:
    created = await _endpoint(private_api, receiver)
    status, body = await private_api.call("DELETE", f"/webhook-endpoints/{created['id']}")
    assert (status, body["data"]) == (200, {"message": "Webhook endpoint deleted"})
    assert (await private_api.call("GET", f"/webhook-endpoints/{created['id']}"))[0] == 404
    assert (await private_api.call("DELETE", f"/webhook-endpoints/{created['id']}"))[0] == 404


async def test_another_organisations_endpoint_is_a_plain_404(
    private_api: Api, receiver: Receiver
) -> None:
    created = await _endpoint(private_api, receiver)
    other = private_api.other_org_key
    status, body = await private_api.call("GET", f"/webhook-endpoints/{created['id']}", key=other)
    assert (status, body["error"]["code"]) == (404, "not_found")
    deleted = await private_api.call("DELETE", f"/webhook-endpoints/{created['id']}", key=other)
    assert deleted[0] == 404
    assert (await private_api.call("GET", f"/webhook-endpoints/{created['id']}"))[0] == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "http://127.0.0.1:9/x", "events": ["hold.nope"]}, "events"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://" + "a" * 2000 + ".com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({}, "url"),
    ],
)
async def test_bad_endpoints_are_refused_naming_the_field(
    private_api: Api, body: dict[str, Any], param: str
) -> None:
    status, answer = await private_api.call("POST", "/webhook-endpoints", body)
    assert (status, answer["error"]["code"], answer["error"]["param"]) == (
        400,
        "invalid_request",
        param,
    )
    assert (await private_api.call("GET", "/webhook-endpoints"))[1]["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/x", "http://localhost/x", "http://10.1.2.3/x", "http://[::1]/x",
     "http://169.254.169.254/latest", "http://0.0.0.0/x", "http://[::ffff:192.168.0.1]/x"],
)  # fmt: skip
async def test_private_targets_are_refused_by_default(api: Api, url: str) -> None:
    status, answer = await api.call("POST", "/webhook-endpoints", {"url": url})
    assert (status, answer["error"]["param"]) == (400, "url")
    assert "not a public address" in answer["error"]["message"]


async def test_managing_webhooks_needs_its_scope(api: Api) -> None:
    lacking = api.lacking["manage_webhooks"]
    status, body = await api.call("GET", "/webhook-endpoints", key=lacking)
    assert (status, body["error"]["code"]) == (403, "insufficient_scope")
    assert (await api.call("GET", "/events", key=lacking))[0] == 403


async def _book_and_cancel(api: Api) -> tuple[str, str, str]:
    """hold.created x2, hold.released, hold.confirmed, appointment.created and .cancelled."""
    _, released = await api.call("POST", "/holds", hold_body("09:00"))
    await api.call("DELETE", f"/holds/{released['data']['id']}")
    _, hold = await api.call("POST", "/holds", hold_body("10:00"))
    _, booked = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    await api.call("POST", f"/appointments/{booked['data']['id']}/cancel", {"reason": "ill"})
    return released["data"]["id"], hold["data"]["id"], booked["data"]["id"]


async def test_every_event_type_is_delivered_signed_with_its_payload(
    make_api: MakeApi, start_worker: StartWorker, receiver: Receiver
) -> None:
    api = await make_api(webhook_allow_private_targets=True, hold_ttl_seconds=2)
    await _endpoint(api, receiver)
    start_worker(**FAST_RETRIES)
    released, confirmed, appointment_id = await _book_and_cancel(api)
    _, expiring = await api.call("POST", "/holds", hold_body("11:00"))
    deliveries = await receiver.wait_for(8)
    by_type = {d.event["type"]: d.event for d in deliveries}
    assert sorted(by_type) == sorted(set(EVERY_TYPE) - {"hold.extended"})
    assert by_type["hold.released"]["data"]["id"] == released
    assert by_type["hold.released"]["data"]["status"] == "released"
    assert set(by_type["hold.confirmed"]["data"]) == HOLD_FIELDS
    assert by_type["hold.confirmed"]["data"]["id"] == confirmed
    assert by_type["hold.confirmed"]["data"]["appointment_id"] == appointment_id
    assert by_type["appointment.created"]["data"]["id"] == appointment_id
    assert by_type["appointment.created"]["data"]["status"] == "confirmed"
    assert by_type["appointment.cancelled"]["data"]["cancellation_reason"] == "ill"
    # An expiry's outbox entry carries only the change; the delivery is the whole hold.
    created = {field: value for field, value in expiring["data"].items() if field in HOLD_FIELDS}
    assert by_type["hold.expired"]["data"] == created | {"status": "expired"}
    first = deliveries[0].event
    assert first["id"].startswith("evt_") and first["created_at"].endswith("Z")


async def test_events_are_kept_for_catching_up_newest_first_and_filtered(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    await _endpoint(private_api, receiver)
    start_worker(**FAST_RETRIES)
    await _book_and_cancel(private_api)
    delivered = await receiver.wait_for(6)
    _, listed = await private_api.call("GET", "/events?limit=100")
    assert listed["pagination"]["total"] == 6
    assert listed["data"][0]["type"] == "appointment.cancelled"
    bodies = {d.event["id"]: d.event for d in delivered}
    assert all(bodies[e["id"]] == e for e in listed["data"])  # each as delivered
    _, filtered = await private_api.call("GET", "/events?type=hold.created")
    assert [e["type"] for e in filtered["data"]] == ["hold.created", "hold.created"]
    bad = await private_api.call("GET", "/events?type=hold.nope")
    assert (bad[0], bad[1]["error"]["param"]) == (400, "type")
    other = await private_api.call("GET", "/events", key=private_api.other_org_key)
    assert other[1]["pagination"]["total"] == 0


async def test_an_endpoint_gets_only_the_types_it_asked_for(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    await _endpoint(private_api, receiver, events=["hold.confirmed", "appointment.cancelled"])
    start_worker(**FAST_RETRIES)
    await _book_and_cancel(private_api)
    await receiver.wait_for(2)
    await asyncio.sleep(1)
    assert sorted(receiver.types()) == ["appointment.cancelled", "hold.confirmed"]


async def test_a_timeout_is_retried_with_the_same_id_and_body(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    # First attempt: no answer within the 1 s timeout. Second: accepted.
    receiver.behaviour = lambda n: (200, 3.0) if n == 0 else (200, 0.0)
    await _endpoint(private_api, receiver, events=["hold.created"])
    start_worker(**FAST_RETRIES)
    await private_api.call("POST", "/holds", hold_body("09:00"))
    await receiver.wait_for(1, within=60)
    attempts = receiver.attempts
    assert len(attempts) == 2
    assert len({a.webhook_id for a in attempts}) == 1 and len({a.body for a in attempts}) == 1
    assert attempts[1].received_at - attempts[0].received_at < 6.5  # first retry within 5 s


async def test_events_wait_for_a_receiver_that_was_down(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    await _endpoint(private_api, receiver)
    await receiver.stop()
    start_worker(**FAST_RETRIES)
    await _book_and_cancel(private_api)
    await asyncio.sleep(2)  # every first attempt fails: nobody listens
    await receiver.start()
    delivered = await receiver.wait_for(6, within=40)
    assert sorted(d.event["type"] for d in delivered) == sorted(
        ["hold.created", "hold.created", "hold.released", "hold.confirmed",
         "appointment.created", "appointment.cancelled"]
    )  # fmt: skip


async def test_a_failure_is_retried_and_later_events_of_its_hold_wait_for_it(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    receiver.behaviour = lambda n: (500, 0.0) if n == 0 else (200, 0.0)
    await _endpoint(private_api, receiver, events=["hold.created", "hold.confirmed"])
    start_worker(**FAST_RETRIES)
    _, hold = await private_api.call("POST", "/holds", hold_body("09:00"))
    await private_api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm_body())
    delivered = await receiver.wait_for(2, within=30)
    assert [d.event["type"] for d in delivered] == ["hold.created", "hold.confirmed"]
    first, retry = receiver.attempts[0], receiver.attempts[1]
    assert (first.webhook_id, first.body) == (retry.webhook_id, retry.body)


async def test_a_slow_endpoint_gets_its_bound_and_holds_up_no_other(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    slow = Receiver(behaviour=lambda n: (200, 4.0))  # answers each request after 4 s
    await slow.start()
    try:
        await _endpoint(private_api, slow, events=["hold.created"])
        await _endpoint(private_api, receiver, events=["hold.created"])
        start_worker(webhook_allow_private_targets="true", webhook_max_in_flight_per_endpoint="2")
        for start in ("09:00", "10:00", "11:00", "12:00", "13:00"):
            status, body = await private_api.call("POST", "/holds", hold_body(start))
            assert status == 201, body
        await receiver.wait_for(5, within=3.5)  # before the slow one has answered twice
        assert len(slow.attempts) == 2 and slow.most_in_progress == 2
        await slow.wait_for(5, within=20)
        assert slow.most_in_progress == 2
    finally:
        await slow.stop()


async def test_an_endpoint_failing_for_long_is_disabled_and_says_so(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    receiver.behaviour = lambda n: (503, 0.0)
    created = await _endpoint(private_api, receiver, events=["hold.created"])
    start_worker(webhook_disable_after_seconds="3", **FAST_RETRIES)
    await private_api.call("POST", "/holds", hold_body("09:00"))

    async def disabled() -> bool:
        _, body = await private_api.call("GET", f"/webhook-endpoints/{created['id']}")
        return body["data"]["disabled_at"] is not None

    await eventually(disabled, within=20)
    _, body = await private_api.call("GET", f"/webhook-endpoints/{created['id']}")
    assert "failed" in body["data"]["disabled_reason"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_target_is_skipped_at_delivery(
    private_api: Api, start_worker: StartWorker, receiver: Receiver, host: str
) -> None:
    url = receiver.url.replace("127.0.0.1", host)
    await _endpoint(private_api, receiver, url=url, events=["hold.created"])
    start_worker(webhook_timeout_seconds="1")  # this worker allows no private targets
    await private_api.call("POST", "/holds", hold_body("09:00"))

    async def refused() -> bool:
        rows = await sql_rows(private_api.settings.database_url,
                              "SELECT attempts, last_error FROM webhook_deliveries")  # fmt: skip
        return bool(rows) and rows[0].attempts >= 1

    await eventually(refused, within=10)
    rows = await sql_rows(private_api.settings.database_url,
                          "SELECT last_error FROM webhook_deliveries")  # fmt: skip
    assert "public address" in rows[0].last_error
    assert receiver.attempts == []


async def test_no_event_is_lost_when_a_worker_is_killed_mid_delivery(
    private_api: Api, start_worker: StartWorker, receiver: Receiver
) -> None:
    receiver.behaviour = lambda n: (200, 5.0) if n == 0 else (200, 0.0)  # the first one stalls
    await _endpoint(private_api, receiver)
    first = start_worker(**FAST_RETRIES)
    await _book_and_cancel(private_api)

    async def one_attempt_in_flight() -> bool:
        return len(receiver.attempts) >= 1

    await eventually(one_attempt_in_flight)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    start_worker(**FAST_RETRIES)
    delivered = await receiver.wait_for(6, within=40)
    assert len(delivered) == 6
    ids = [a.webhook_id for a in receiver.attempts]
    assert len(set(ids)) == 6  # duplicates, if any, carry the id of the event they repeat


async def test_no_event_is_lost_when_redis_restarts_before_a_worker_moved_it(
    aiohttp_client: Any, deployed_redis: DeployedRedis, sqlite_url: str, start_worker: StartWorker,
    receiver: Receiver,
) -> None:  # fmt: skip
    keys = await seed_database(sqlite_url)
    settings = Settings(
        redis_url=deployed_redis.url, database_url=sqlite_url, webhook_allow_private_targets=True
    )
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    api = Api(client, keys.key, keys.other_org_key, keys.lacking, settings)
    await _endpoint(api, receiver)
    await _book_and_cancel(api)  # no worker yet: the events wait in the outbox
    deployed_redis.kill()  # appendfsync always: what was answered is on disk
    await deployed_redis.start()
    start_worker(redis=deployed_redis.url, **FAST_RETRIES)
    delivered = await receiver.wait_for(6, within=30)
    assert len({d.webhook_id for d in delivered}) == 6


async def test_no_event_is_lost_when_the_api_dies_between_change_and_answer(
    tmp_path: Path, redis_url: str, start_worker: StartWorker, receiver: Receiver
) -> None:
    database_url = f"sqlite:///{tmp_path / 'holds.sqlite3'}"
    shared = {"redis_url": redis_url, "database_url": database_url,
              "webhook_allow_private_targets": "true"}  # fmt: skip
    with demo_server(tmp_path / "api", fault_exit_after_confirm_commit="true", **shared) as server:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.key}"}) as http:
            async with http.post(
                f"{server.api}/webhook-endpoints", json={"url": receiver.url}
            ) as r:
                receiver.secret = (await r.json())["data"]["secret"]
            body = hold_body("09:00", kind=DEMO_INITIAL, date=SUMMER_MONDAY)
            async with http.post(f"{server.api}/holds", json=body) as r:
                hold_id = (await r.json())["data"]["id"]
            with pytest.raises(aiohttp.ClientError):  # the process exits after the commit
                await http.post(f"{server.api}/holds/{hold_id}/confirm", json=confirm_body())
    start_worker(database_url=database_url, **FAST_RETRIES)
    delivered = await receiver.wait_for(3, within=30)
    assert sorted(receiver.types()) == ["appointment.created", "hold.confirmed", "hold.created"]
    assert delivered[-1].event["data"]["status"] == "confirmed"


async def test_operators_manage_endpoints_from_the_command_line(sqlite_url: str) -> None:
    await seed_database(sqlite_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {"HOLDS_DATABASE_URL": sqlite_url, "HOLDS_LOG_LEVEL": "WARNING"}

    def holds(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app", "webhooks", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    refused = holds("add", "--org", ORG, "--url", "http://127.0.0.1:9/hooks")
    assert refused.returncode != 0 and "not a public address" in refused.stderr
    env["HOLDS_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    added = holds("add", "--org", ORG, "--url", "http://127.0.0.1:9/hooks", "--events",
                  "hold.created,hold.expired")  # fmt: skip
    assert added.returncode == 0, added.stderr
    endpoint_id = added.stdout.split()[1]
    assert added.stdout.strip().splitlines()[-1].startswith("whsec_")
    listed = holds("list", "--org", ORG)
    assert endpoint_id in listed.stdout and "whsec_" not in listed.stdout
    assert "hold.created,hold.expired" in listed.stdout
    assert holds("add", "--org", ORG, "--url", "http://x.example/", "--events", "nope").returncode
    assert holds("remove", "--org", ORG, endpoint_id).returncode == 0
    assert endpoint_id not in holds("list", "--org", ORG).stdout
    assert holds("remove", "--org", ORG, endpoint_id).returncode != 0
