"""Request ids, and the one place where any failure becomes the error envelope."""

from __future__ import annotations

import logging
import re
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Histogram
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from app import logs, metrics
from app.domain import limits
from app.errors import HoldsError
from app.store.faults import redis_unavailable
from app.web import responses
from app.web.auth import caller
from app.web.state import LIMITS

log = logging.getLogger("holds.http")
access_log = logging.getLogger("holds.access")

REQUEST_ID = web.RequestKey("request_id", str)
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HTTP_CODES = {
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "That method is not allowed on this resource."),
    413: ("request_too_large", "The request body is larger than 64 KiB."),
}


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means a backing store (Redis or the database) cannot serve for now."""
    return redis_unavailable(exc) or isinstance(exc, OperationalError | InterfaceError)


def _request_id(request: web.Request) -> str:
    sent = request.headers.get("X-Request-Id", "")
    return sent if _CLIENT_REQUEST_ID.fullmatch(sent) else f"req_{secrets.token_hex(12)}"


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every response an X-Request-Id, and every failure the error envelope."""
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    # Requests on one keep-alive connection may share a context: start each one clean.
    logs.request_id.set(request_id)
    caller.set(None)
    limits.admission.set(None)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except (HoldsError, ValidationError, web.HTTPException) as exc:
        response = error_response(exc, request_id)
    except Exception as exc:
        response = failure_response(exc, request_id)
    response.headers["X-Request-Id"] = request_id
    await _rate_headers(request, response)
    _observe(request, response.status, time.perf_counter() - started)
    return response


def failure_response(exc: Exception, request_id: str) -> web.Response:
    """503 `unavailable` (with Retry-After) for a store fault, 500 for anything else (a bug)."""
    if unavailable(exc):
        log.warning("backing store unavailable: %s: %s", type(exc).__name__, exc)
        return responses.error(
            503,
            "unavailable",
            "A backing store is unavailable; retry shortly.",
            request_id=request_id,
            headers={"Retry-After": "1"},
        )
    log.error("unhandled error", exc_info=exc, extra={"request_id": request_id})
    return responses.error(
        500, "internal_error", "Something went wrong on our side.", request_id=request_id
    )


async def _rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """X-RateLimit-* on every response; a request refused before admission still counts."""
    app_limits = request.app[LIMITS]
    principal = caller.get()
    if principal is not None and limits.admission.get() is None:
        try:
            await app_limits.count(principal)
        except Exception as exc:  # the answer is decided: a fault here must not change it
            if not unavailable(exc):
                log.error("could not count the request", exc_info=exc)
    admitted = limits.admission.get()
    response.headers["X-RateLimit-Limit"] = str(app_limits.per_minute)
    remaining = admitted.remaining if admitted is not None else app_limits.per_minute
    response.headers["X-RateLimit-Remaining"] = str(remaining)


# REQUEST_SECONDS's child per (route, method, status): finding one by its labels costs more
# than observing into it.
_timers: dict[tuple[str, str, int], Histogram] = {}


def _observe(request: web.Request, status: int, seconds: float) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    labels = (route, request.method, status)
    timer = _timers.get(labels)
    if timer is None:
        timer = _timers[labels] = metrics.REQUEST_SECONDS.labels(route, request.method, str(status))
    timer.observe(seconds)
    if not access_log.isEnabledFor(logging.INFO):  # the usual setting under load
        return
    access_log.info(
        "request",
        extra={
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )


def error_response(
    exc: HoldsError | ValidationError | web.HTTPException, request_id: str
) -> web.Response:
    """The error envelope for a refusal: domain errors, invalid input, aiohttp's HTTP errors."""
    if isinstance(exc, HoldsError):
        return _domain_error(exc, request_id)
    if isinstance(exc, ValidationError):
        return _validation_error(exc, request_id)
    return _http_error(exc, request_id)


def _domain_error(exc: HoldsError, request_id: str) -> web.Response:
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return responses.error(
        exc.status, exc.code, exc.message, param=exc.param, request_id=request_id, headers=headers
    )


def _validation_error(exc: ValidationError, request_id: str) -> web.Response:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "missing":
        message = f"{param} is required."
    else:
        message = f"{param}: {first['msg']}." if param else f"{first['msg']}."
    return responses.error(400, "invalid_request", message, param=param, request_id=request_id)


def _http_error(exc: web.HTTPException, request_id: str) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, ("invalid_request", exc.reason))
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return responses.error(exc.status, code, message, request_id=request_id, headers=headers)
