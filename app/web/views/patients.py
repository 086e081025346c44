"""Patients of the caller's organisation."""

from __future__ import annotations

from aiohttp import web

from app import ids
from app.db import models, patients_repo
from app.errors import NotFound
from app.public import PatientPublic
from app.schemas import Page, PatientCreate
from app.web.auth import authorise
from app.web.parsing import parse_body, parse_query
from app.web.responses import listing, ok
from app.web.state import SESSIONS


async def list_patients(request: web.Request) -> web.Response:
    principal = await authorise(request, "read_patients")
    page = parse_query(request, Page)
    async with request.app[SESSIONS]() as session:
        found, total = await patients_repo.page(session, principal.org_id, page.limit, page.offset)
    return listing([PatientPublic.model_validate(p) for p in found], total=total, page=page)


async def get_patient(request: web.Request) -> web.Response:
    principal = await authorise(request, "read_patients")
    async with request.app[SESSIONS]() as session:
        patient = await patients_repo.get(session, principal.org_id, request.match_info["id"])
    if patient is None:
        raise NotFound("No such patient.")
    return ok(PatientPublic.model_validate(patient))


async def create_patient(request: web.Request) -> web.Response:
    principal = await authorise(request, "write_patients")
    body = await parse_body(request, PatientCreate)
    patient = models.Patient(
        id=ids.new_id("pat"),
        org_id=principal.org_id,
        first_name=body.first_name,
        last_name=body.last_name,
        date_of_birth=body.date_of_birth,
        email=body.email,
        phone=body.phone,
    )
    async with request.app[SESSIONS].begin() as session:
        patients_repo.add(session, patient)
    return ok(PatientPublic.model_validate(patient), status=201)
