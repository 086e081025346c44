"""The response envelopes: `{"data": ...}`, paginated lists, and errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from app.domain.records import Hold
from app.public import TIMESTAMP_OPTIONS, hold_fields
from app.schemas import Page


def _json(
    payload: dict[str, Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    options: int | None = None,
) -> web.Response:
    # orjson: 0.4 us instead of 6.5 us for a hold, 42 us instead of 522 us for 200 slots.
    return web.Response(
        body=orjson.dumps(payload, option=options),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


def ok(data: BaseModel | dict[str, Any] | list[Any], status: int = 200) -> web.Response:
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return _json({"data": body}, status=status)


def hold(record: Hold, status: int = 200) -> web.Response:
    """`{"data": <the hold>}`, as `ok(HoldPublic.model_validate(record))` renders it."""
    return _json({"data": hold_fields(record)}, status=status, options=TIMESTAMP_OPTIONS)


def listing(items: Sequence[BaseModel], *, total: int, page: Page) -> web.Response:
    pagination = {
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "has_more": page.offset + len(items) < total,
    }
    data = [item.model_dump(mode="json") for item in items]
    return _json({"data": data, "pagination": pagination})


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
    return _json({"error": payload}, status=status, headers=headers)
