"""The OpenAPI document and docs page, and CORS for browser front ends."""

from __future__ import annotations

import re

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
        and not route.resource.canonical.endswith("/events")
    }
    assert documented == served
    hold = document["components"]["schemas"]["HoldCreate"]
    assert set(hold["required"]) == {"appointment_type_id", "clinician_id", "date", "start_time"}


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
