"""`GET /metrics`: Prometheus text format, with backlogs read fresh from Redis."""

from __future__ import annotations

import contextlib

from aiohttp import web
from arq.constants import default_queue_name
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from app.db.catalog_repo import clinician_tags
from app.web.state import QUEUE, SESSIONS, UPKEEP


async def prometheus(request: web.Request) -> web.Response:
    # When a store is down the gauges keep their last values: the scrape itself must not fail.
    with contextlib.suppress(RedisError, SQLAlchemyError, OSError):
        await _refresh_backlogs(request.app)
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _refresh_backlogs(app: web.Application) -> None:
    async with app[SESSIONS]() as session:
        tags = set((await clinician_tags(session)).values())
    active, pending = await app[UPKEEP].backlog_sizes(tags)
    metrics.ACTIVE_HOLDS.set(active)
    metrics.PERSISTENCE_BACKLOG.set(pending)
    metrics.QUEUE_DEPTH.set(await app[QUEUE].zcard(default_queue_name))
