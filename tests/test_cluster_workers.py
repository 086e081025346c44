"""Workers and start-up on a Redis Cluster: expiry per master, and the queue it requires."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import redis

from app.ids import tag_of
from app.store import keys
from tests.catalog import FOLLOW_UP, TOM
from tests.conftest import MakeApi, StartWorker, eventually
from tests.helpers import hold_body

TTL = 2


def _refusal(command: list[str], cluster_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDS_")}
    env |= {"HOLDS_REDIS_URL": cluster_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_refuses_a_cluster_without_a_queue_redis(cluster_url: str) -> None:
    run = _refusal(["worker", "--metrics-port", "0"], cluster_url)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "HOLDS_QUEUE_REDIS_URL" in run.stderr


def test_serve_refuses_a_cluster_without_a_queue_redis(cluster_url: str) -> None:
    run = _refusal(["serve", "--port", "0"], cluster_url)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert "HOLDS_QUEUE_REDIS_URL" in run.stderr


async def test_worker_cleans_up_expired_holds_on_every_master(
    make_cluster_api: MakeApi, start_worker: StartWorker
) -> None:
    api = await make_cluster_api(hold_ttl_seconds=TTL)
    start_worker(redis=api.settings.redis_url, queue_redis_url=api.settings.queue_redis_url)
    bodies = [hold_body("09:00"), hold_body("10:00", kind=FOLLOW_UP, clinician=TOM, location=None)]
    holds = [(await api.call("POST", "/holds", body))[1]["data"]["id"] for body in bodies]
    cluster = redis.RedisCluster.from_url(api.settings.redis_url)
    records = [keys.hold(hold_id) for hold_id in holds]
    assert len({cluster.get_node_from_key(key).name for key in records}) == 2  # two masters

    def expiries_announced(hold_id: str) -> list[bytes]:
        return [fields[b"_subjects"] for _, fields in cluster.xrange(keys.events(tag_of(hold_id)))
                if fields[b"_event"] == b"hold.expired"]  # fmt: skip

    async def cleaned() -> bool:
        return all(cluster.zcard(keys.expiries(tag_of(hold_id))) == 0 for hold_id in holds)

    await eventually(cleaned, within=TTL + 10)
    assert [expiries_announced(hold_id) for hold_id in holds] == [[h.encode()] for h in holds]
    cluster.close()


async def test_expired_hold_reads_expired_and_frees_its_slot_without_a_worker(
    make_cluster_api: MakeApi,
) -> None:
    api = await make_cluster_api(hold_ttl_seconds=TTL)
    status, created = await api.call("POST", "/holds", hold_body("09:00"))
    assert status == 201
    await asyncio.sleep(TTL + 0.2)
    status, fetched = await api.call("GET", f"/holds/{created['data']['id']}")
    assert (status, fetched["data"]["status"]) == (200, "expired")
    assert (await api.call("POST", "/holds", hold_body("09:00")))[0] == 201
