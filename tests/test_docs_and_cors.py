"""The OpenAPI document and docs page, and CORS for browser front ends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Api, MakeApi

FRONT_END = "https://book.example-clinic.test"


async def test_openapi_documents_every_api_route(api: Api) -> None:
    response = await api.client.get("/v1/openapi.json")
    document = await response.json()
    assert response.status == 200
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, methods in document["paths"].items() for method in methods
    }
    served = {
        (route.method, route.resource.canonical)
        for route in api.client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/v1/")
        and route.method in ("GET", "POST", "DELETE")
        and not route.resource.canonical.endswith(("openapi.json", "/docs"))
        # A Server-Sent Events stream, not JSON: the README documents it (live hold status).
        and not route.resource.canonical.endswith("/holds/{hold_id}/events")
    }
    assert documented == served
    hold = document["components"]["schemas"]["HoldCreate"]
    assert set(hold["required"]) == {"appointment_type_id", "clinician_id", "date", "start_time"}


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/v1/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        spec["operationId"]: spec | {"path": path, "method": method}
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    }


async def test_every_operation_has_an_id_summary_and_tag(api: Api) -> None:
    document = await _document(api)
    specs = [spec for methods in document["paths"].values() for spec in methods.values()]
    ids = [spec.get("operationId") for spec in specs]
    assert len(set(ids)) == len(specs) and None not in ids
    assert {"create_hold", "get_hold", "release_hold", "confirm_hold"} <= set(ids)
    tags = {tag["name"] for tag in document["tags"]}
    assert all(spec["summary"] and len(spec["tags"]) == 1 for spec in specs)
    assert all(spec["tags"][0] in tags for spec in specs)


async def test_every_post_documents_idempotency_clashes_and_body_limit(api: Api) -> None:
    posts = [op for op in _operations(await _document(api)).values() if op["method"] == "post"]
    assert {op["operationId"] for op in posts} == {
        "create_hold", "extend_hold", "confirm_hold", "cancel_appointment", "create_patient",
        "create_webhook_endpoint",
    }  # fmt: skip
    for op in posts:
        clash = op["responses"]["409"]["content"]["application/json"]["schema"]
        codes = clash["properties"]["error"]["properties"]["code"]["enum"]
        assert {"idempotency_key_reused", "idempotency_key_in_use"} <= set(codes), op["path"]
        assert "413" in op["responses"]
        assert "Idempotency-Key" in [p["name"] for p in op["parameters"]]


async def test_every_response_documents_request_id_and_rate_limit_headers(api: Api) -> None:
    for op in _operations(await _document(api)).values():
        for status, response in op["responses"].items():
            headers = set(response["headers"])
            assert {"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining"} <= headers
            assert ("Retry-After" in headers) == (status in ("429", "503")), (op["path"], status)
            assert ("WWW-Authenticate" in headers) == (status == "401")


async def test_ids_are_documented_with_their_prefix_pattern(api: Api) -> None:
    document = await _document(api)
    operations = _operations(document)
    hold_id = operations["get_hold"]["parameters"][0]["schema"]["pattern"]
    assert re.fullmatch(hold_id, "hold_5f0c1d2e-e89b-12d3-a456-426614170000")
    assert not re.fullmatch(hold_id, "0")
    body = document["components"]["schemas"]["HoldCreate"]["properties"]
    assert body["appointment_type_id"]["pattern"].startswith("^type_")
    assert not re.fullmatch(body["appointment_type_id"]["pattern"], "0")


async def test_date_of_birth_pattern_admits_today_and_refuses_tomorrow(api: Api) -> None:
    document = await _document(api)
    birth = document["components"]["schemas"]["PatientCreate"]["properties"]["date_of_birth"]
    today = datetime.now(UTC).date()
    assert re.fullmatch(birth["pattern"], today.isoformat())
    assert re.fullmatch(birth["pattern"], "1900-01-01")
    assert not re.fullmatch(birth["pattern"], (today + timedelta(days=1)).isoformat())


async def test_create_and_confirm_link_to_the_operations_using_their_ids(api: Api) -> None:
    operations = _operations(await _document(api))
    created = operations["create_hold"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in created.values()} >= {
        "get_hold",
        "release_hold",
        "confirm_hold",
    }
    assert all(
        link["parameters"] == {"hold_id": "$response.body#/data/id"} for link in created.values()
    )
    confirmed = operations["confirm_hold"]["responses"]["201"]["links"]
    assert confirmed["GetAppointment"] == {
        "operationId": "get_appointment",
        "parameters": {"appointment_id": "$response.body#/data/id"},
    }


async def test_docs_page_works_offline(api: Api) -> None:
    response = await api.client.get("/v1/docs")
    page = await response.text()
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "openapi.json" in page
    assert not re.findall(r"(?:src|href)=\"https?://", page)  # no CDN assets
    redirect = await api.client.get("/docs", allow_redirects=False)
    assert (redirect.status, redirect.headers["Location"]) == (302, "/v1/docs")


async def test_cors_is_closed_by_default(api: Api) -> None:
    headers = api.auth() | {"Origin": FRONT_END}
    response = await api.client.get("/v1/clinicians", headers=headers)
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = await api.client.options(
        "/v1/holds", headers={"Origin": FRONT_END, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_allowed_origin_gets_cors_headers_and_preflight(make_api: MakeApi) -> None:
    api = await make_api(cors_origins=f"{FRONT_END}, https://other.test")
    preflight = await api.client.options(
        "/v1/holds",
        headers={
            "Origin": FRONT_END,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    response = await api.client.get("/v1/nowhere", headers={"Origin": FRONT_END})
    assert response.headers["Access-Control-Allow-Origin"] == FRONT_END
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]
    stranger = await api.client.get("/v1/clinicians", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
