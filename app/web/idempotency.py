"""`Idempotency-Key` on POST requests, with Stripe's semantics.

The first response to a key, error or success, is stored for 24 hours and replayed, with
`Idempotent-Replayed: true`, to any retry with the same body; the same key with another body is
409 `idempotency_key_reused`, and a retry while the first is still running is 409
`idempotency_key_in_use`. Keys are scoped to the API key (so the organisation), method and path.
Responses that did nothing lasting are not stored, so a retry runs afresh: 429 (refused before
it ran) and 5xx (a store was unreachable, or a bug).
"""

from __future__ import annotations

import hashlib
import json
import re

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from app.errors import HoldsError, IdempotencyKeyInUse, IdempotencyKeyReused, InvalidRequest
from app.store import keys
from app.store.idempotency import StoredResponse
from app.web.auth import authenticate
from app.web.middleware import REQUEST_ID, error_response
from app.web.state import IDEMPOTENCY

_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    idempotency_key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or idempotency_key is None:
        return await handler(request)
    if not _VALID_KEY.fullmatch(idempotency_key):
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            param="Idempotency-Key",
        )
    principal = await authenticate(request)
    scope = f"{request.method} {request.path} {idempotency_key}"
    record = keys.idempotency(principal.key_id, hashlib.sha256(scope.encode()).hexdigest())
    store = request.app[IDEMPOTENCY]
    begun = await store.begin(record, _fingerprint(await request.read()))
    if isinstance(begun, StoredResponse):
        return web.Response(
            status=begun.status,
            body=begun.body,
            content_type=begun.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    if begun == "reused":
        raise IdempotencyKeyReused("This Idempotency-Key was first used with another body.")
    if begun == "in_use":
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still in progress.")
    return await _first_request(request, handler, record)


async def _first_request(request: web.Request, handler: Handler, record: str) -> web.StreamResponse:
    store = request.app[IDEMPOTENCY]
    try:
        response = await handler(request)
    except (HoldsError, ValidationError, web.HTTPException) as exc:
        response = error_response(exc, request[REQUEST_ID])
    except BaseException:
        await store.abandon(record)
        raise
    if not isinstance(response, web.Response) or response.status == 429 or response.status >= 500:
        await store.abandon(record)
        return response
    body = response.body if isinstance(response.body, bytes) else b""
    content_type = response.content_type or "application/json"
    await store.finish(record, StoredResponse(response.status, content_type, body))
    return response


def _fingerprint(body: bytes) -> str:
    """The same JSON with other spacing or key order is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()
