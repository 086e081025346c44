"""The response envelopes: `{"data": ...}`, paginated lists, and errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from app.schemas import Page


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def ok(data: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return web.json_response({"data": body}, status=status, dumps=_dumps)


def listing(items: Sequence[BaseModel], *, total: int, page: Page) -> web.Response:
    pagination = {
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "has_more": page.offset + len(items) < total,
    }
    data = [item.model_dump(mode="json") for item in items]
    return web.json_response({"data": data, "pagination": pagination}, dumps=_dumps)


def error(
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    payload = {"code": code, "message": message, "param": param, "request_id": request_id}
    return web.json_response({"error": payload}, status=status, headers=headers, dumps=_dumps)
