"""Turning request bodies and query strings into validated models."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from app.errors import InvalidRequest

Model = TypeVar("Model", bound=BaseModel)


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """The JSON object body as `model`; any malformation is a 400 naming the field."""
    raw = await request.read()  # aiohttp refuses bodies over client_max_size with 413
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    except RecursionError:  # thousands of nested arrays fit in 64 KiB
        raise InvalidRequest("The request body is nested too deeply.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return model.model_validate(data)


def parse_query(request: web.Request, model: type[Model]) -> Model:
    """The query string as `model`; a repeated parameter counts by its first value."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        params.setdefault(name, value)
    return model.model_validate(params)
