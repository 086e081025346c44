"""The API's own description: OpenAPI 3.1 JSON, and a page that renders it with no CDN."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from app.web.openapi import openapi_document
from app.web.state import SETTINGS

_PAGE = resources.files("app.web").joinpath("docs.html").read_text(encoding="utf-8")


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SETTINGS].base_path))


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=_PAGE, content_type="text/html")


async def docs_redirect(request: web.Request) -> web.Response:
    location = f"{request.app[SETTINGS].base_path}/docs"
    return web.Response(status=302, headers={"Location": location})
