"""Bearer API keys: who is calling, and may they do this."""

from __future__ import annotations

import contextvars
import re

from aiohttp import web

from app.domain.principal import Principal
from app.errors import InsufficientScope, Unauthorized
from app.web.state import KEYS, LIMITS

_BEARER = re.compile(r"Bearer (pk_(?:live|test)_[A-Za-z0-9_\-]{16,128})")


# Who the current request is from, once known, so failures can still be counted against the key.
caller: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("caller", default=None)


async def authenticate(request: web.Request) -> Principal:
    """The caller's principal, if the request carries a valid, live key."""
    match = _BEARER.fullmatch(request.headers.get("Authorization", ""))
    if match is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer pk_live_...`.")
    principal = await request.app[KEYS].principal_for(match.group(1))
    if principal is None:
        raise Unauthorized("That API key is not valid or has been revoked.")
    caller.set(principal)
    return principal


async def authorise(request: web.Request, scope: str, *, admit: bool = True) -> Principal:
    """The caller's principal, if its key is valid, live and carries `scope`, admitted under
    the key's rate limit. `admit=False` leaves admission to the domain (POST /holds admits
    together with the new hold's place, in one round trip)."""
    principal = await authenticate(request)
    if scope not in principal.scopes:
        raise InsufficientScope(f"This API key lacks the {scope} scope.")
    if admit:
        await request.app[LIMITS].admit(principal)
    return principal
