"""The parts of the OpenAPI document every operation shares: the error envelope, each status's
error codes, and the response headers the middleware sets."""

from __future__ import annotations

from typing import Any

# What each status means, and the request id's shape (the client's own, or the service's).
STATUS_MEANINGS = {
    400: "Invalid input (`param` names the field), an unknown id in the body, or a slot that "
    "is not offered",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the operation's scope",
    404: "No such resource in the caller's organisation (also for an id of the wrong shape)",
    409: "Conflict with the current state, or an Idempotency-Key clash",
    413: "Body over 64 KiB",
    429: "Rate limited, or too many active holds for this key; retry after `Retry-After`",
    503: "Redis or the database is unreachable; retry after `Retry-After`",
}
REQUEST_ID_PATTERN = "^[A-Za-z0-9._:\\-]{1,128}$"

# Refusals any authenticated operation can meet, by status.
AUTHENTICATED: dict[int, tuple[str, ...]] = {
    401: ("unauthorized",),
    403: ("insufficient_scope",),
    429: ("rate_limited",),
    503: ("unavailable",),
}
# What the Idempotency-Key handling adds to every POST.
POSTED: dict[int, tuple[str, ...]] = {
    400: ("invalid_request",),
    409: ("idempotency_key_reused", "idempotency_key_in_use"),
    413: ("request_too_large",),
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id: the client's own `X-Request-Id` when it sent a valid "
        "one (letters, digits and `._:-`, at most 128), else a new `req_...`.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "X-RateLimit-Limit": {
        "description": "Requests this API key may make per minute.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left to this API key in the current minute.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "WWW-Authenticate": {
        "description": "How to authenticate: a Bearer API key.",
        "required": True,
        "schema": {"type": "string", "enum": ["Bearer"]},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with the "
        "same Idempotency-Key and body.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def header_components() -> dict[str, Any]:
    return {name.replace("-", ""): spec for name, spec in HEADERS.items()}


def headers_for(status: int, *, posted: bool) -> dict[str, Any]:
    """The response headers of one status of one operation."""
    names = ["X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining"]
    if status in (429, 503):
        names.append("Retry-After")
    if status == 401:
        names.append("WWW-Authenticate")
    # Only what ran is stored and replayed: not 429s, 5xx or failures before the first run.
    if posted and status not in (401, 413, 429, 503):
        names.append("Idempotent-Replayed")
    return {name: {"$ref": f"#/components/headers/{name.replace('-', '')}"} for name in names}


def error_response(status: int, codes: tuple[str, ...], *, posted: bool) -> dict[str, Any]:
    """The error envelope of one status of one operation, with exactly its codes."""
    listed = ", ".join(f"`{code}`" for code in codes)
    detail = {
        "type": "object",
        "required": ["code", "message", "param", "request_id"],
        "properties": {
            "code": {"type": "string", "enum": list(codes)},
            "message": {"type": "string", "description": "A sentence for people."},
            "param": {
                "type": ["string", "null"],
                "description": "The request field at fault, if one is.",
            },
            "request_id": {
                "type": "string",
                "pattern": REQUEST_ID_PATTERN,
                "description": "The response's X-Request-Id.",
            },
        },
    }
    envelope = {"type": "object", "required": ["error"], "properties": {"error": detail}}
    return {
        "description": f"{STATUS_MEANINGS[status]}: {listed}.",
        "headers": headers_for(status, posted=posted),
        "content": {"application/json": {"schema": envelope}},
    }


def pagination_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["total", "limit", "offset", "has_more"],
        "properties": {
            "total": {"type": "integer", "minimum": 0, "description": "Items matching in all."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "offset": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
            "has_more": {"type": "boolean", "description": "Whether items follow this page."},
        },
    }
