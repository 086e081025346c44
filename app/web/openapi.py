"""The OpenAPI 3.1 document, built from the same pydantic models that validate and render."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.public import (
    AppointmentPublic,
    AppointmentTypePublic,
    ClinicianPublic,
    HoldCreatedPublic,
    HoldPublic,
    LocationPublic,
    PatientPublic,
    SlotPublic,
)
from app.schemas import (
    AppointmentCancel,
    AppointmentQuery,
    AvailabilityQuery,
    HoldConfirm,
    HoldCreate,
    HoldExtend,
    Page,
    PatientCreate,
)

_REF = "#/components/schemas/{model}"
_ERRORS = {
    400: "Invalid input, an unknown id in the body, or a slot that is not offered",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the scope",
    404: "No such resource in the caller's organisation",
    409: "Conflict: the slot is taken, the hold's state forbids it, or an idempotency clash",
    413: "Body over 64 KiB",
    429: "Rate limited, or too many active holds for this key",
    503: "Redis or the database is unreachable; retry",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    scope: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    listing: bool = False
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 429, 503))


OPERATIONS = (
    Operation("post", "/holds", "Create a hold", "write_holds", HoldCreatedPublic, 201, HoldCreate,
              errors=(400, 401, 403, 409, 413, 429, 503)),
    Operation("get", "/holds/{hold_id}", "Check a hold's status", "write_holds", HoldPublic),
    Operation("delete", "/holds/{hold_id}", "Release a hold", "write_holds",
              errors=(401, 403, 404, 409, 429, 503)),
    Operation("post", "/holds/{hold_id}/confirm", "Confirm a hold into an appointment",
              "write_holds", AppointmentPublic, 201, HoldConfirm,
              errors=(400, 401, 403, 404, 409, 413, 429, 503)),
    Operation("post", "/holds/{hold_id}/extend", "Extend a hold", "write_holds", HoldPublic,
              body=HoldExtend, errors=(400, 401, 403, 404, 409, 413, 429, 503)),
    Operation("get", "/availability", "Slots that can be held now", "read_availability",
              SlotPublic, query=AvailabilityQuery, listing=True),
    Operation("get", "/appointments", "List appointments", "read_appointments",
              AppointmentPublic, query=AppointmentQuery, listing=True),
    Operation("get", "/appointments/{appointment_id}", "Get an appointment",
              "read_appointments", AppointmentPublic),
    Operation("post", "/appointments/{appointment_id}/cancel", "Cancel an appointment",
              "write_appointments", AppointmentPublic, body=AppointmentCancel),
    Operation("get", "/patients", "List patients", "read_patients", PatientPublic,
              query=Page, listing=True),
    Operation("post", "/patients", "Create a patient", "write_patients", PatientPublic, 201,
              PatientCreate),
    Operation("get", "/patients/{id}", "Get a patient", "read_patients", PatientPublic),
    Operation("get", "/appointment-types", "List appointment types", "read_appointment_types",
              AppointmentTypePublic, query=Page, listing=True),
    Operation("get", "/appointment-types/{id}", "Get an appointment type",
              "read_appointment_types", AppointmentTypePublic),
    Operation("get", "/clinicians", "List clinicians", "read_clinicians", ClinicianPublic,
              query=Page, listing=True),
    Operation("get", "/clinicians/{id}", "Get a clinician", "read_clinicians", ClinicianPublic),
    Operation("get", "/locations", "List locations", "read_locations", LocationPublic,
              query=Page, listing=True),
    Operation("get", "/locations/{id}", "Get a location", "read_locations", LocationPublic),
)  # fmt: skip


def openapi_document(base_path: str) -> dict[str, Any]:
    schemas = _component_schemas()
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(base_path + operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "holds",
            "version": "1",
            "description": "Hold an appointment slot for one patient, then confirm or free it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _component_schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], Any]] = []
    for operation in OPERATIONS:
        if operation.body is not None:
            models.append((operation.body, "validation"))
        if operation.response is not None:
            models.append((operation.response, "serialization"))
    _, top = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    schemas["Error"] = _error_schema()
    schemas["Pagination"] = {
        "type": "object",
        "required": ["total", "limit", "offset", "has_more"],
        "properties": {
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "has_more": {"type": "boolean"},
        },
    }
    return schemas


def _error_schema() -> dict[str, Any]:
    detail = {
        "type": "object",
        "required": ["code", "message", "param", "request_id"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "param": {"type": ["string", "null"]},
            "request_id": {"type": "string"},
        },
    }
    return {"type": "object", "required": ["error"], "properties": {"error": detail}}


def _operation(operation: Operation) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "summary": operation.summary,
        "description": f"Scope: `{operation.scope}`.",
        "parameters": _path_parameters(operation.path) + _query_parameters(operation.query),
        "responses": {str(operation.status): _success(operation)} | _errors(operation),
    }
    if operation.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(operation.body)}},
        }
    if operation.method == "post":
        spec["parameters"].append(
            {"name": "Idempotency-Key", "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": 255}}
        )  # fmt: skip
    return spec


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _success(operation: Operation) -> dict[str, Any]:
    if operation.response is None:
        data: dict[str, Any] = {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        }
    elif operation.listing:
        data = {"type": "array", "items": _ref(operation.response)}
    else:
        data = _ref(operation.response)
    body: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {"data": data}}
    if operation.listing and operation.query is not AvailabilityQuery:
        body["properties"]["pagination"] = {"$ref": _REF.format(model="Pagination")}
        body["required"].append("pagination")
    return {"description": "Success", "content": {"application/json": {"schema": body}}}


def _errors(operation: Operation) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    return {
        str(code): {"description": _ERRORS[code], "content": error} for code in operation.errors
    }


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]
