"""`GET /availability`: slots that can be held right now."""

from __future__ import annotations

from aiohttp import web

from app.domain.availability import find_available_slots
from app.public import SlotPublic
from app.schemas import AvailabilityQuery
from app.web.auth import authorise
from app.web.parsing import parse_query
from app.web.responses import ok
from app.web.state import APPOINTMENTS, CATALOGS, CLOCK, HOLD_STORE


async def availability(request: web.Request) -> web.Response:
    principal = await authorise(request, "read_availability")
    query = parse_query(request, AvailabilityQuery)
    catalog = await request.app[CATALOGS].get(principal.org_id)
    now = request.app[CLOCK].now()
    restore = request.app[APPOINTMENTS].restore_tag
    slots = await find_available_slots(catalog, request.app[HOLD_STORE], restore, query, now)
    data = [SlotPublic.of(slot).model_dump(mode="json") for slot in slots]
    return ok(data)
