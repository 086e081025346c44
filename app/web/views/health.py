"""Unauthenticated probes for load balancers and orchestrators."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from app.errors import Unavailable
from app.web.responses import ok
from app.web.state import ENGINE, REDIS


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving."""
    return ok({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Redis and the database both answer; otherwise 503 so traffic goes elsewhere."""
    try:
        await request.app[REDIS].ping()
    except Exception:
        raise Unavailable("Redis is unreachable.") from None
    try:
        async with request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        raise Unavailable("The database is unreachable.") from None
    return ok({"status": "ready", "redis": "ok", "database": "ok"})
