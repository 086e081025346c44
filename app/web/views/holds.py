"""The four hold endpoints of the seed API, and extend."""

from __future__ import annotations

from aiohttp import web

from app.public import AppointmentPublic
from app.schemas import HoldConfirm, HoldCreate, HoldExtend
from app.web import responses
from app.web.auth import authorise
from app.web.idempotency import recoverable
from app.web.parsing import parse_body
from app.web.responses import ok
from app.web.state import CATALOGS, HOLDS


@recoverable
async def create_hold(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_holds", admit=False)
    body = await parse_body(request, HoldCreate)
    hold = await request.app[HOLDS].create(principal, body)
    return responses.hold(hold, status=201)


async def get_hold(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_holds")
    hold = await request.app[HOLDS].get(principal, request.match_info["hold_id"])
    return responses.hold(hold)


async def release_hold(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_holds")
    await request.app[HOLDS].release(principal, request.match_info["hold_id"])
    return ok({"message": "Hold released"})


async def extend_hold(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_holds")
    await parse_body(request, HoldExtend)
    hold = await request.app[HOLDS].extend(principal, request.match_info["hold_id"])
    return responses.hold(hold)


@recoverable
async def confirm_hold(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_holds")
    body = await parse_body(request, HoldConfirm)
    appointment = await request.app[HOLDS].confirm(principal, request.match_info["hold_id"], body)
    catalog = await request.app[CATALOGS].get(principal.org_id)
    return ok(AppointmentPublic.of(appointment, catalog), status=201)
