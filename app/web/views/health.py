"""Unauthenticated probes for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from app.errors import Unavailable
from app.web.responses import ok
from app.web.state import ENGINE, REDIS

_RETRY = {"Retry-After": "1"}


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving."""
    return ok({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Redis and the database answer, and Redis is not still loading its data set after a
    restart; otherwise 503 so traffic goes elsewhere."""
    try:
        persistence = await request.app[REDIS].info("persistence")
    except Exception:
        raise Unavailable("Redis is unavailable.", headers=_RETRY) from None
    if str(persistence.get("loading", "0")) != "0":
        raise Unavailable("Redis is loading its data set.", headers=_RETRY)
    try:
        async with request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        raise Unavailable("The database is unreachable.", headers=_RETRY) from None
    return ok({"status": "ready", "redis": "ok", "database": "ok"})
