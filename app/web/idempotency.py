"""`Idempotency-Key` on POST requests, with Stripe's semantics.

The first response to a key, error or success, is stored for 24 hours and replayed, with
`Idempotent-Replayed: true`, to any retry with the same body; the same key with another body is
409 `idempotency_key_reused`, and a retry while the first is still running is 409
`idempotency_key_in_use`. Keys are scoped to the API key (so the organisation), method and path.
Responses that did nothing lasting are not stored, so a retry runs afresh: 429 (refused before
it ran) and 5xx (a store was unreachable, or a bug).

A 503 may come after the change committed (the fault came later), and a process may die after
it: then no response is stored, or the key's in-flight marker outlives its request. So the hold
and appointment writes (`recoverable` handlers) record the attempt's token with their change,
and a retry finds it: a retry that finds the marker runs such a handler in recover-only mode,
which answers with the committed change (201 or 200, `Idempotent-Replayed: true`) and
otherwise 409 `idempotency_key_in_use`; a retry that finds no marker runs it normally, and the
scripts, finding the change already made under this token, answer with it instead of acting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from app.domain import attempts
from app.errors import HoldsError, IdempotencyKeyInUse, IdempotencyKeyReused, InvalidRequest
from app.store import keys
from app.store.idempotency import RUNNING_MS, IdempotencyStore, StoredResponse
from app.web.auth import authenticate
from app.web.middleware import REQUEST_ID, error_response, unavailable
from app.web.state import IDEMPOTENCY

log = logging.getLogger("holds.idempotency")
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Handlers whose writes record the attempt's token, so a retry can learn what they did.
_RECOVERABLE: set[Handler] = set()
# Abandons that failed (Redis was away) and are being retried, so the key frees soon after
# Redis is back rather than when the marker lapses.
_ABANDONING: set[asyncio.Task[None]] = set()


def recoverable(handler: Handler) -> Handler:
    """Mark a POST handler whose change a retry under the same Idempotency-Key can recover
    (`app.domain.attempts`): it then runs even while an earlier attempt's marker stands."""
    _RECOVERABLE.add(handler)
    return handler


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    attempts.current.set(None)  # requests on one keep-alive connection may share a context
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
    fingerprint = _fingerprint(await request.read())
    owner = secrets.token_hex(8)
    try:
        begun = await request.app[IDEMPOTENCY].begin(record, fingerprint, owner)
    except Exception:  # the marker may have been written all the same, the reply lost
        _abandon_later(request.app[IDEMPOTENCY], record, owner)
        raise
    if isinstance(begun, StoredResponse):
        return web.Response(
            status=begun.status,
            body=begun.body,
            content_type=begun.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    if begun == "reused":
        raise IdempotencyKeyReused("This Idempotency-Key was first used with another body.")
    recover_only = begun == "in_use"
    if recover_only and request.match_info.handler not in _RECOVERABLE:
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still in progress.")
    token = hashlib.sha256(f"{principal.key_id}\n{scope}\n{fingerprint}".encode()).hexdigest()
    attempt = attempts.Attempt(token[:32], recover_only=recover_only)
    attempts.current.set(attempt)
    return await _attempt(request, handler, (record, owner), attempt)


async def _attempt(
    request: web.Request, handler: Handler, record: tuple[str, str], attempt: attempts.Attempt
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except (HoldsError, ValidationError, web.HTTPException) as exc:
        response = error_response(exc, request[REQUEST_ID])
    except BaseException:
        if not attempt.recover_only:  # the marker is the earlier attempt's, not ours
            await _abandon(request, record)
        raise
    if attempt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if attempt.recover_only and not attempt.replayed:
        return response  # 409 in use, most likely: nothing of ours to store or forget
    if not isinstance(response, web.Response) or response.status == 429 or response.status >= 500:
        await _abandon(request, record)
        return response
    store = request.app[IDEMPOTENCY]
    body = response.body if isinstance(response.body, bytes) else b""
    content_type = response.content_type or "application/json"
    # Should this fail, the answer is a 503 and the marker stays: the retry recovers the change.
    await store.finish(record[0], StoredResponse(response.status, content_type, body))
    return response


async def _abandon(request: web.Request, record: tuple[str, str]) -> None:
    """Free the key for a retry. The request's own outcome (often a fault that this fails
    for too) is what the caller gets; should this fail, it is retried in the background."""
    store = request.app[IDEMPOTENCY]
    try:
        await store.abandon(*record)
    except Exception as exc:
        if not unavailable(exc):
            log.error("could not free an Idempotency-Key", exc_info=exc)
        _abandon_later(store, *record)


def _abandon_later(store: IdempotencyStore, record: str, owner: str) -> None:
    task = asyncio.get_running_loop().create_task(_keep_abandoning(store, record, owner))
    _ABANDONING.add(task)
    task.add_done_callback(_ABANDONING.discard)


async def _keep_abandoning(store: IdempotencyStore, record: str, owner: str) -> None:
    """Until Redis answers, or the marker has lapsed by itself anyway."""
    delay, deadline = 0.05, asyncio.get_running_loop().time() + RUNNING_MS / 1000
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(delay)
        try:
            await store.abandon(record, owner)
            return
        except Exception:
            delay = min(delay * 2, 1.0)


def _fingerprint(body: bytes) -> str:
    """The same JSON with other spacing or key order is the same request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()
