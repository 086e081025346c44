"""Contract section 1 and 2: strict input, the error envelope, request ids, auth and tenancy."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from unittest.mock import ANY

import pytest

from app.db import keys_repo
from app.db.engine import create_engine, session_factory
from app.logs import JsonFormatter
from tests.catalog import OTHER_PATIENT
from tests.conftest import Api
from tests.helpers import confirm_body, hold_body


async def _error(api: Api, method: str, path: str, **kwargs: object) -> tuple[int, dict[str, str]]:
    response = await api.client.request(method, api.settings.base_path + path, **kwargs)  # type: ignore[arg-type]
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "param", "request_id"}
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]
    return response.status, body["error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start_time", "9:00"),
        ("start_time", "09:00:00"),
        ("start_time", "24:00"),
        ("start_time", "09:60"),
        ("start_time", "\uff10\uff19:\uff10\uff10"),  # full-width digits
        ("start_time", 900),
        ("date", "2030-7-1"),
        ("date", "2030-02-30"),
        ("date", "01/07/2030"),
        ("date", 20300701),
        ("appointment_type_id", ""),
        ("clinician_id", "   "),
        ("clinician_id", None),
        ("clinician_id", ["cli_x"]),
        ("location_id", 5),
    ],
)
async def test_malformed_hold_fields_are_400_naming_the_field(
    api: Api, field: str, value: object
) -> None:
    status, error = await _error(
        api, "POST", "/holds", json=hold_body() | {field: value}, headers=api.auth()
    )
    assert (status, error["code"], error["param"]) == (400, "invalid_request", field)


@pytest.mark.parametrize("field", ["appointment_type_id", "clinician_id", "date", "start_time"])
async def test_missing_required_field_is_400_naming_it(api: Api, field: str) -> None:
    body = hold_body()
    del body[field]
    status, error = await _error(api, "POST", "/holds", json=body, headers=api.auth())
    assert (status, error["code"], error["param"]) == (400, "invalid_request", field)


@pytest.mark.parametrize("raw", [b"{bad json", b"[1, 2]", b'"text"', b"\xff\xfe", b"null"])
async def test_body_that_is_not_a_json_object_is_400(api: Api, raw: bytes) -> None:
    status, error = await _error(api, "POST", "/holds", data=raw, headers=api.auth())
    assert (status, error["code"]) == (400, "invalid_request")


async def test_bad_input_changes_nothing(api: Api) -> None:
    await api.call("POST", "/holds", hold_body() | {"start_time": "9:00"})
    assert (await api.call("POST", "/holds", hold_body()))[0] == 201


async def test_unknown_fields_are_ignored(api: Api) -> None:
    status, _ = await api.call("POST", "/holds", hold_body() | {"colour": "blue"})
    assert status == 201


async def test_body_over_64_kib_is_413(api: Api) -> None:
    body = hold_body() | {"padding": "x" * 70_000}
    status, error = await _error(api, "POST", "/holds", json=body, headers=api.auth())
    assert (status, error["code"]) == (413, "request_too_large")


async def test_client_request_id_is_echoed(api: Api) -> None:
    headers = api.auth() | {"X-Request-Id": "booking-page-42"}
    response = await api.client.get("/v1/clinicians", headers=headers)
    assert response.headers["X-Request-Id"] == "booking-page-42"


async def test_request_id_is_generated_when_not_sent(api: Api) -> None:
    response = await api.client.get("/v1/clinicians", headers=api.auth())
    assert response.headers["X-Request-Id"].startswith("req_")


async def test_responses_are_utf8_json_and_keep_non_ascii_text(api: Api) -> None:
    patient = {"first_name": "Zoë", "last_name": "Ōtake-Łukasz", "date_of_birth": "1990-12-10"}
    response = await api.client.post("/v1/patients", json=patient, headers=api.auth())
    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    raw = await response.read()
    assert "Ōtake-Łukasz".encode() in raw  # sent as UTF-8 text, not \u escapes
    assert (await response.json())["data"]["first_name"] == "Zoë"


async def test_each_request_writes_one_json_access_line_with_its_request_id(api: Api) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("holds.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        headers = api.auth() | {"X-Request-Id": "booking-page-7"}
        await api.client.get("/v1/clinicians", headers=headers)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [
        {
            "time": ANY,
            "level": "info",
            "logger": "holds.access",
            "message": "request",
            "request_id": "booking-page-7",
            "method": "GET",
            "route": "/v1/clinicians",
            "status": 200,
            "duration_ms": ANY,
        }
    ]


async def test_unknown_route_is_a_404_envelope(api: Api) -> None:
    status, error = await _error(api, "GET", "/nowhere", headers=api.auth())
    assert (status, error["code"]) == (404, "not_found")


async def test_wrong_method_is_a_405_envelope(api: Api) -> None:
    status, error = await _error(api, "PUT", "/holds", headers=api.auth())
    assert (status, error["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic abc", "Bearer pk_live_unknownunknownunknown", "bearer pk_live_x"],
)
async def test_missing_or_unknown_key_is_401_with_bearer_challenge(
    api: Api, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await api.client.post("/v1/holds", json=hold_body(), headers=headers)
    body = await response.json()
    assert response.status == 401
    assert body["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("scope", "method", "path"),
    [
        ("write_holds", "POST", "/holds"),
        ("read_availability", "GET", "/availability"),
        ("read_clinicians", "GET", "/clinicians"),
        ("read_locations", "GET", "/locations"),
        ("read_appointment_types", "GET", "/appointment-types"),
        ("read_appointments", "GET", "/appointments/apt_00000000-0000-4000-8000-000000000000"),
    ],
)
async def test_key_without_the_scope_is_403(api: Api, scope: str, method: str, path: str) -> None:
    status, body = await api.call(method, path, hold_body(), key=api.lacking[scope])
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"


async def test_revoked_key_is_refused_within_five_seconds(api: Api) -> None:
    assert (await api.call("GET", "/clinicians"))[0] == 200
    engine = create_engine(api.settings.effective_database_url)
    async with session_factory(engine).begin() as session:
        await keys_repo.revoke_key(session, api.key[:16])
    await engine.dispose()
    await asyncio.sleep(api.settings.cache_seconds)
    status, body = await api.call("GET", "/clinicians")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_another_organisations_hold_is_a_plain_404(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    hold_id = created["data"]["id"]
    for method, suffix, body in (("GET", "", None), ("DELETE", "", None)):
        status, answer = await api.call(
            method, f"/holds/{hold_id}{suffix}", body, api.other_org_key
        )
        assert (status, answer["error"]["code"]) == (404, "hold_not_found")
    status, answer = await api.call(
        "POST", f"/holds/{hold_id}/confirm", confirm_body(OTHER_PATIENT), api.other_org_key
    )
    assert (status, answer["error"]["code"]) == (404, "hold_not_found")
    assert (await api.call("GET", f"/holds/{hold_id}"))[1]["data"]["status"] == "active"


async def test_another_organisations_appointment_is_a_plain_404(api: Api) -> None:
    _, created = await api.call("POST", "/holds", hold_body())
    _, confirmed = await api.call("POST", f"/holds/{created['data']['id']}/confirm", confirm_body())
    path = f"/appointments/{confirmed['data']['id']}"
    status, answer = await api.call("GET", path, key=api.other_org_key)
    assert (status, answer["error"]["code"]) == (404, "not_found")


async def test_another_organisations_catalog_ids_are_resource_missing(api: Api) -> None:
    status, body = await api.call("POST", "/holds", hold_body(), key=api.other_org_key)
    assert (status, body["error"]["code"]) == (400, "resource_missing")


async def test_healthz_and_readyz_need_no_key(api: Api) -> None:
    assert (await api.client.get("/healthz")).status == 200
    ready = await api.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["data"]["status"] == "ready"
