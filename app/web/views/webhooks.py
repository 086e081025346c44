"""Webhook endpoints, and the organisation's recent events for receivers catching up."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from app import ids
from app.db import models, webhooks_repo
from app.errors import InvalidRequest, NotFound
from app.public import EventPublic, WebhookEndpointCreated, WebhookEndpointPublic
from app.schemas import EventQuery, Page, WebhookEndpointCreate
from app.web.auth import authorise
from app.web.parsing import parse_body, parse_query
from app.web.responses import listing, ok
from app.web.state import SESSIONS, SETTINGS
from app.webhooks import endpoints
from app.webhooks.targets import TargetRefused

SCOPE = "manage_webhooks"


async def create_endpoint(request: web.Request) -> web.Response:
    principal = await authorise(request, SCOPE)
    body = await parse_body(request, WebhookEndpointCreate)
    allow_private = request.app[SETTINGS].webhook_allow_private_targets
    try:
        async with request.app[SESSIONS].begin() as session:
            endpoint = await endpoints.register(
                session,
                principal.org_id,
                body.url,
                body.events,
                body.description,
                allow_private=allow_private,
            )
    except TargetRefused as refused:
        raise InvalidRequest(f"url: {refused}.", param="url") from None
    return ok(WebhookEndpointCreated.model_validate(endpoint), status=201)


async def list_endpoints(request: web.Request) -> web.Response:
    principal = await authorise(request, SCOPE)
    page = parse_query(request, Page)
    async with request.app[SESSIONS]() as session:
        found, total = await webhooks_repo.endpoints_page(
            session, principal.org_id, page.limit, page.offset
        )
    return listing([WebhookEndpointPublic.model_validate(e) for e in found], total=total, page=page)


async def get_endpoint(request: web.Request) -> web.Response:
    principal = await authorise(request, SCOPE)
    async with request.app[SESSIONS]() as session:
        endpoint = await _endpoint(session, principal.org_id, request.match_info["id"])
    return ok(WebhookEndpointPublic.model_validate(endpoint))


async def delete_endpoint(request: web.Request) -> web.Response:
    principal = await authorise(request, SCOPE)
    async with request.app[SESSIONS].begin() as session:
        removed = await endpoints.remove(session, principal.org_id, request.match_info["id"])
    if not removed:
        raise NotFound("No such webhook endpoint.")
    return ok({"message": "Webhook endpoint deleted"})


async def list_events(request: web.Request) -> web.Response:
    principal = await authorise(request, SCOPE)
    query = parse_query(request, EventQuery)
    async with request.app[SESSIONS]() as session:
        found, total = await webhooks_repo.events_page(
            session, principal.org_id, query.type, query.limit, query.offset
        )
    return listing([EventPublic.model_validate(e) for e in found], total=total, page=query)


async def _endpoint(session: AsyncSession, org_id: str, endpoint_id: str) -> models.WebhookEndpoint:
    found = None
    if ids.is_valid("whe", endpoint_id):
        found = await webhooks_repo.endpoint(session, org_id, endpoint_id)
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return found
