"""Bearer API keys: who is calling, and may they do this."""

from __future__ import annotations

import re

from aiohttp import web

from app.domain.principal import Principal
from app.errors import InsufficientScope, Unauthorized
from app.web.state import KEYS

_BEARER = re.compile(r"Bearer (pk_(?:live|test)_[A-Za-z0-9_\-]{16,128})")


async def authorise(request: web.Request, scope: str) -> Principal:
    """The caller's principal, if its key is valid, live and carries `scope`."""
    match = _BEARER.fullmatch(request.headers.get("Authorization", ""))
    if match is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer pk_live_...`.")
    principal = await request.app[KEYS].principal_for(match.group(1))
    if principal is None:
        raise Unauthorized("That API key is not valid or has been revoked.")
    if scope not in principal.scopes:
        raise InsufficientScope(f"This API key lacks the {scope} scope.")
    return principal
