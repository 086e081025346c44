"""The application's one middleware: CORS outermost, then request ids, rate-limit headers,
metrics and the error envelope (app/web/middleware.py), then Idempotency-Key
(app/web/idempotency.py), in that order.

As three aiohttp middlewares, every request went through all three layers; most requests
carry neither an Origin nor an Idempotency-Key, so here those layers are entered only by the
requests that need them."""

from __future__ import annotations

from functools import partial

from aiohttp import web
from aiohttp.typedefs import Handler

from app.domain import attempts
from app.web.cors import cors
from app.web.idempotency import idempotency
from app.web.middleware import envelope


@web.middleware
async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
    attempts.current.set(None)  # requests on one keep-alive connection may share a context
    if request.method == "POST" and "Idempotency-Key" in request.headers:
        handler = partial(idempotency, handler=handler)
    if "Origin" in request.headers:
        return await cors(request, partial(envelope, handler=handler))
    return await envelope(request, handler)
