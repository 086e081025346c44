"""The read-only catalog: appointment types, clinicians and locations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from app.domain.catalog import OrgCatalog
from app.errors import NotFound
from app.public import AppointmentTypePublic, ClinicianPublic, LocationPublic
from app.schemas import Page
from app.web.auth import authorise
from app.web.parsing import parse_query
from app.web.responses import listing, ok
from app.web.state import CATALOGS

Handler = Callable[[web.Request], Any]


def _resource(
    scope: str,
    entries: Callable[[OrgCatalog], Mapping[str, Any]],
    render: Callable[[Any], BaseModel],
    noun: str,
) -> tuple[Handler, Handler]:
    """The list and get handlers of one catalog resource."""

    async def list_entries(request: web.Request) -> web.Response:
        principal = await authorise(request, scope)
        page = parse_query(request, Page)
        catalog = await request.app[CATALOGS].get(principal.org_id)
        everything = list(entries(catalog).values())
        chosen = everything[page.offset : page.offset + page.limit]
        return listing([render(entry) for entry in chosen], total=len(everything), page=page)

    async def get_entry(request: web.Request) -> web.Response:
        principal = await authorise(request, scope)
        catalog = await request.app[CATALOGS].get(principal.org_id)
        entry = entries(catalog).get(request.match_info["id"])
        if entry is None:
            raise NotFound(f"No such {noun}.")
        return ok(render(entry))

    return list_entries, get_entry


list_appointment_types, get_appointment_type = _resource(
    "read_appointment_types",
    lambda c: c.appointment_types,
    AppointmentTypePublic.model_validate,
    "appointment type",
)
list_clinicians, get_clinician = _resource(
    "read_clinicians", lambda c: c.clinicians, ClinicianPublic.of, "clinician"
)
list_locations, get_location = _resource(
    "read_locations", lambda c: c.locations, LocationPublic.model_validate, "location"
)
