"""The demo booking page: static files served as they are, only by `holds serve --demo`.

It calls the API with the demo key, which the page fetches from config.json: acceptable for a
demo on a laptop, never for a real site (README, the booking page).
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

_FILES = {
    "": ("booking.html", "text/html"),
    "booking.js": ("booking.js", "text/javascript"),
    "booking.css": ("booking.css", "text/css"),
}


def add_booking_page(app: web.Application, base_path: str, demo_key: str, timezone: str) -> None:
    """Serve the page at /demo/ (the API is at `base_path` on the same origin)."""
    config = {"api": base_path, "key": demo_key, "timezone": timezone}

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/demo/")

    async def page_config(request: web.Request) -> web.Response:
        return web.json_response(config, headers={"Cache-Control": "no-store"})

    async def static_file(request: web.Request) -> web.Response:
        name, content_type = _FILES[request.match_info.get("name", "")]
        text = resources.files("app.web").joinpath("static", name).read_text(encoding="utf-8")
        return web.Response(text=text, content_type=content_type, charset="utf-8")

    app.router.add_get("/demo", redirect)
    app.router.add_get("/demo/", static_file)
    app.router.add_get("/demo/config.json", page_config)
    app.router.add_get("/demo/{name:booking\\.(?:js|css)}", static_file)
