"""However malformed a request, the answer is a clear 4xx in the error envelope, and nothing
changes. (Fuzzing against the OpenAPI document is in test_fuzzing.py.)"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.helpers import hold_body


async def _raw(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await api.client.request(method, path, **kwargs)
    body = await response.json(content_type=None)
    assert "X-Request-Id" in response.headers
    return response.status, body


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 60_000,
        b'{"a":' * 12_000,
        b'{"appointment_type_id": NaN}',
        b'{"clinician_id": "\\u0000"}',
        b"\x00\x01\x02",
        '{"date": "\U0001f600"}'.encode(),
    ],
    ids=["deep-arrays", "deep-objects", "nan", "nul-char", "binary", "emoji-date"],
)
async def test_malformed_bodies_are_400(api: Api, raw: bytes) -> None:
    status, body = await _raw(api, "POST", "/v1/holds", data=raw, headers=api.auth())
    assert status == 400
    assert body["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(
    "encode",
    [lambda text: text.encode("utf-16"), lambda text: b"\xef\xbb\xbf" + text.encode()],
    ids=["utf-16", "utf-8-bom"],
)
async def test_json_bodies_outside_plain_utf8_are_read_as_the_json_module_reads_them(
    api: Api, encode: Callable[[str], bytes]
) -> None:
    raw = encode(json.dumps(hold_body()))
    status, body = await _raw(api, "POST", "/v1/holds", data=raw, headers=api.auth())
    assert status == 201, body
    assert body["data"]["status"] == "active"


@pytest.mark.parametrize("number", ["1e400", str(2**70)], ids=["infinity", "past-64-bits"])
async def test_a_number_json_allows_is_refused_by_the_field_it_is_in(api: Api, number: str) -> None:
    raw = json.dumps(hold_body()).replace('"09:00"', number).encode()
    status, body = await _raw(api, "POST", "/v1/holds", data=raw, headers=api.auth())
    assert status == 400
    assert body["error"]["param"] == "start_time"


@pytest.mark.parametrize(
    "field_value",
    ["x" * 60_000, "\U0001f600" * 10_000, "cli_" + "\u202e" * 100, "'; DROP TABLE holds; --"],
    ids=["60k", "emoji", "rtl-override", "sql"],
)
async def test_huge_and_strange_strings_are_refused_cleanly(api: Api, field_value: str) -> None:
    status, body = await _raw(
        api, "POST", "/v1/holds", json=hold_body() | {"clinician_id": field_value},
        headers=api.auth(),
    )  # fmt: skip
    assert status in (400, 413)
    assert body["error"]["code"] in ("invalid_request", "resource_missing", "request_too_large")


@pytest.mark.parametrize(
    "hold_id",
    ["%00", "..%2F..%2Fetc%2Fpasswd", "x" * 5000, "%F0%9F%98%80", "hold_%27%20OR%201%3D1", "%FF"],
    ids=["nul", "traversal", "5000", "emoji", "sql", "bad-utf8"],
)
async def test_garbage_path_ids_are_404(api: Api, hold_id: str) -> None:
    for method in ("GET", "DELETE"):
        status, body = await _raw(api, method, f"/v1/holds/{hold_id}", headers=api.auth())
        assert status == 404, (method, hold_id)
        assert body["error"]["code"] in ("hold_not_found", "not_found")


@pytest.mark.parametrize("method", ["PATCH", "PUT", "TRACE"])
async def test_wrong_methods_are_405(api: Api, method: str) -> None:
    status, body = await _raw(api, method, "/v1/holds", headers=api.auth())
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    "query",
    [
        "limit=99999999999999999999999",
        "offset=15452550833546464589774848",
        "limit=1e3",
        "offset=-0",
        "limit=%00",
        "limit=\U0001f600",
    ],
)
async def test_bad_query_values_are_400(api: Api, query: str) -> None:
    for path in ("/v1/clinicians", "/v1/patients", "/v1/appointments"):
        status, body = await _raw(api, "GET", f"{path}?{query}", headers=api.auth())
        assert status in (200, 400), (path, query)  # "-0" is a fine zero
        if status == 400:
            assert body["error"]["param"] in ("limit", "offset")


async def test_nothing_changes_after_a_barrage_of_bad_requests(api: Api) -> None:
    bad_bodies = [b"[" * 60_000, b"{}", b'{"start_time": "25:00"}', b"null"]
    await asyncio.gather(
        *(api.client.post("/v1/holds", data=b, headers=api.auth()) for b in bad_bodies * 5)
    )
    assert (await api.call("POST", "/holds", hold_body()))[0] == 201


async def test_oversized_header_gets_a_4xx_and_the_server_lives_on(api: Api) -> None:
    host, port = api.client.server.host, api.client.server.port
    request = (
        f"GET /v1/clinicians HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * 20_000}\r\n\r\n"
    ).encode()
    reply = await asyncio.to_thread(_send_raw, host, port, request)
    assert reply.split(b" ", 2)[1].startswith(b"4")
    assert (await api.call("GET", "/clinicians"))[0] == 200


def _send_raw(host: str, port: int, request: bytes) -> bytes:
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(request)
        return connection.recv(200)
