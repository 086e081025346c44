"""CORS for browser front ends: closed unless HOLDS_CORS_ORIGINS lists the origin."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from app.web.state import SETTINGS

_ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
_EXPOSED_HEADERS = (
    "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After, Idempotent-Replayed"
)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[SETTINGS].cors_origin_list
    if allowed and _is_preflight(request):
        return web.Response(status=204, headers=_preflight_headers(origin))
    response = await handler(request)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin  # type: ignore[assignment]
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")
    return response


def allow_headers(request: web.Request) -> dict[str, str]:
    """The CORS headers of a response to this request, for a handler that sends its headers
    itself (a stream) before this middleware sees the response."""
    origin = request.headers.get("Origin")
    if origin is None or origin not in request.app[SETTINGS].cors_origin_list:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": _EXPOSED_HEADERS,
        "Vary": "Origin",
    }


def _is_preflight(request: web.Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight_headers(origin: str | None) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin or "",
        "Access-Control-Allow-Methods": "GET, POST, DELETE",
        "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }
