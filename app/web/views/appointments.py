"""Appointments: read them, list them, cancel them."""

from __future__ import annotations

from aiohttp import web

from app.db.appointments_repo import AppointmentFilter
from app.domain.pages import Window
from app.public import AppointmentPublic
from app.schemas import AppointmentCancel, AppointmentQuery
from app.web.auth import authorise
from app.web.idempotency import recoverable
from app.web.parsing import parse_body, parse_query
from app.web.responses import listing, ok
from app.web.state import APPOINTMENTS, CATALOGS


async def get_appointment(request: web.Request) -> web.Response:
    principal = await authorise(request, "read_appointments")
    appointment = await request.app[APPOINTMENTS].get(
        principal.org_id, request.match_info["appointment_id"]
    )
    catalog = await request.app[CATALOGS].get(principal.org_id)
    return ok(AppointmentPublic.of(appointment, catalog))


async def list_appointments(request: web.Request) -> web.Response:
    principal = await authorise(request, "read_appointments")
    query = parse_query(request, AppointmentQuery)
    where = AppointmentFilter(
        clinician_id=query.clinician_id,
        patient_id=query.patient_id,
        status=query.status,
        start_date=query.start_date,
        end_date=query.end_date,
    )
    catalog = await request.app[CATALOGS].get(principal.org_id)
    found, total = await request.app[APPOINTMENTS].find(
        catalog, where, Window(query.offset, query.limit)
    )
    return listing([AppointmentPublic.of(a, catalog) for a in found], total=total, page=query)


@recoverable
async def cancel_appointment(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_appointments")
    body = await parse_body(request, AppointmentCancel)
    cancelled = await request.app[APPOINTMENTS].cancel(
        principal.org_id, request.match_info["appointment_id"], body.reason
    )
    catalog = await request.app[CATALOGS].get(principal.org_id)
    return ok(AppointmentPublic.of(cancelled, catalog))
