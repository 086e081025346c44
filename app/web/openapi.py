"""The OpenAPI 3.1 document, built from the same pydantic models that validate and render."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app import json_patterns
from app.public import (
    AppointmentPublic,
    AppointmentTypePublic,
    ClinicianPublic,
    EventPublic,
    HoldCreatedPublic,
    HoldPublic,
    LocationPublic,
    PatientPublic,
    SlotPublic,
    WebhookEndpointCreated,
    WebhookEndpointPublic,
)
from app.schemas import (
    AppointmentCancel,
    AppointmentQuery,
    AvailabilityQuery,
    EventQuery,
    HoldConfirm,
    HoldCreate,
    HoldExtend,
    Page,
    PatientCreate,
    WebhookEndpointCreate,
)
from app.web import openapi_responses as shared

_REF = "#/components/schemas/{model}"
# The id kind each path parameter names; an id of another shape is a 404.
_PATH_IDS = {
    "/holds/": "hold",
    "/appointments/": "apt",
    "/patients/": "pat",
    "/appointment-types/": "type",
    "/clinicians/": "cli",
    "/locations/": "loc",
    "/webhook-endpoints/": "whe",
}
_TAGS = {
    "holds": "Keep a slot for one patient, then confirm it into an appointment or release it.",
    "availability": "Slots that can be held now.",
    "appointments": "Bookings made by confirming holds.",
    "patients": "The organisation's patients.",
    "catalog": "Appointment types, clinicians and locations (read-only).",
    "webhooks": "Endpoints that receive signed events, and the recent events to catch up with.",
}


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: the target operation takes `parameter` from this response's `data.id`."""

    name: str
    operation_id: str
    parameter: str


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    summary: str
    tag: str
    scope: str
    response: type[BaseModel] | None = None
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    listing: bool = False
    # Refusals beyond those every authenticated operation (and every POST) can meet.
    errors: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    links: tuple[Link, ...] = ()


_HOLD_LINKS = (
    Link("GetHold", "get_hold", "hold_id"),
    Link("ReleaseHold", "release_hold", "hold_id"),
    Link("ConfirmHold", "confirm_hold", "hold_id"),
)
_APPOINTMENT_LINKS = (
    Link("GetAppointment", "get_appointment", "appointment_id"),
    Link("CancelAppointment", "cancel_appointment", "appointment_id"),
)
_INVALID: Mapping[int, tuple[str, ...]] = {400: ("invalid_request",)}
_NOT_FOUND: Mapping[int, tuple[str, ...]] = {404: ("not_found",)}

OPERATIONS = (
    Operation("create_hold", "post", "/holds", "Hold a slot", "holds", "write_holds",
              HoldCreatedPublic, 201, HoldCreate,
              errors={400: ("invalid_request", "resource_missing", "slot_not_offered"),
                      409: ("slot_unavailable",), 429: ("rate_limited", "too_many_holds")},
              links=_HOLD_LINKS),
    Operation("get_hold", "get", "/holds/{hold_id}", "Check a hold's status", "holds",
              "write_holds", HoldPublic, errors={404: ("hold_not_found",)},
              links=_HOLD_LINKS[1:]),
    Operation("release_hold", "delete", "/holds/{hold_id}", "Release a hold", "holds",
              "write_holds",
              errors={404: ("hold_not_found", "hold_expired"), 409: ("hold_confirmed",)}),
    Operation("confirm_hold", "post", "/holds/{hold_id}/confirm",
              "Confirm a hold into an appointment", "holds", "write_holds", AppointmentPublic,
              201, HoldConfirm,
              errors={400: ("invalid_request", "resource_missing"),
                      404: ("hold_not_found", "hold_expired", "hold_released"),
                      409: ("hold_already_confirmed",)},
              links=_APPOINTMENT_LINKS),
    Operation("extend_hold", "post", "/holds/{hold_id}/extend", "Extend a hold", "holds",
              "write_holds", HoldPublic, body=HoldExtend, body_required=False,
              errors={404: ("hold_not_found", "hold_expired", "hold_released"),
                      409: ("hold_confirmed", "hold_extension_limit")}),
    Operation("list_availability", "get", "/availability", "List slots that can be held now",
              "availability", "read_availability", SlotPublic, query=AvailabilityQuery,
              listing=True, errors={400: ("invalid_request", "resource_missing")}),
    Operation("list_appointments", "get", "/appointments", "List appointments", "appointments",
              "read_appointments", AppointmentPublic, query=AppointmentQuery, listing=True,
              errors=_INVALID),
    Operation("get_appointment", "get", "/appointments/{appointment_id}", "Get an appointment",
              "appointments", "read_appointments", AppointmentPublic, errors=_NOT_FOUND,
              links=_APPOINTMENT_LINKS[1:]),
    Operation("cancel_appointment", "post", "/appointments/{appointment_id}/cancel",
              "Cancel an appointment", "appointments", "write_appointments", AppointmentPublic,
              body=AppointmentCancel, body_required=False, errors=_NOT_FOUND),
    Operation("list_patients", "get", "/patients", "List patients", "patients", "read_patients",
              PatientPublic, query=Page, listing=True, errors=_INVALID),
    Operation("create_patient", "post", "/patients", "Create a patient", "patients",
              "write_patients", PatientPublic, 201, PatientCreate,
              links=(Link("GetPatient", "get_patient", "id"),)),
    Operation("get_patient", "get", "/patients/{id}", "Get a patient", "patients",
              "read_patients", PatientPublic, errors=_NOT_FOUND),
    Operation("list_appointment_types", "get", "/appointment-types", "List appointment types",
              "catalog", "read_appointment_types", AppointmentTypePublic, query=Page,
              listing=True, errors=_INVALID),
    Operation("get_appointment_type", "get", "/appointment-types/{id}",
              "Get an appointment type", "catalog", "read_appointment_types",
              AppointmentTypePublic, errors=_NOT_FOUND),
    Operation("list_clinicians", "get", "/clinicians", "List clinicians", "catalog",
              "read_clinicians", ClinicianPublic, query=Page, listing=True, errors=_INVALID),
    Operation("get_clinician", "get", "/clinicians/{id}", "Get a clinician", "catalog",
              "read_clinicians", ClinicianPublic, errors=_NOT_FOUND),
    Operation("list_locations", "get", "/locations", "List locations", "catalog",
              "read_locations", LocationPublic, query=Page, listing=True, errors=_INVALID),
    Operation("get_location", "get", "/locations/{id}", "Get a location", "catalog",
              "read_locations", LocationPublic, errors=_NOT_FOUND),
    Operation("create_webhook_endpoint", "post", "/webhook-endpoints",
              "Register a webhook endpoint", "webhooks", "manage_webhooks",
              WebhookEndpointCreated, 201, WebhookEndpointCreate, errors=_INVALID,
              links=(Link("GetWebhookEndpoint", "get_webhook_endpoint", "id"),)),
    Operation("list_webhook_endpoints", "get", "/webhook-endpoints", "List webhook endpoints",
              "webhooks", "manage_webhooks", WebhookEndpointPublic, query=Page, listing=True,
              errors=_INVALID),
    Operation("get_webhook_endpoint", "get", "/webhook-endpoints/{id}",
              "Get a webhook endpoint", "webhooks", "manage_webhooks", WebhookEndpointPublic,
              errors=_NOT_FOUND),
    Operation("delete_webhook_endpoint", "delete", "/webhook-endpoints/{id}",
              "Delete a webhook endpoint", "webhooks", "manage_webhooks", errors=_NOT_FOUND),
    Operation("list_events", "get", "/events", "List recent events, newest first", "webhooks",
              "manage_webhooks", EventPublic, query=EventQuery, listing=True, errors=_INVALID),
)  # fmt: skip

_DESCRIPTION = """Hold an appointment slot for one patient, then confirm or free it.

Authenticate with `Authorization: Bearer pk_live_...` (or `pk_test_...`). Success is
`{"data": ...}`; lists add `pagination`. Every failure is
`{"error": {"code", "message", "param", "request_id"}}`, and every response carries
`X-Request-Id`, `X-RateLimit-Limit` and `X-RateLimit-Remaining`. An unknown path is 404
`not_found`; a method a path does not offer is 405 `method_not_allowed` with `Allow`.
Every POST takes an optional `Idempotency-Key`: a retry with the same key and body within
24 hours gets the first response again, with `Idempotent-Replayed: true`."""


def openapi_document(base_path: str) -> dict[str, Any]:
    """The whole document, for routes under `base_path`."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(base_path + operation.path, {})[operation.method] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": "holds", "version": "1", "description": _DESCRIPTION},
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": _component_schemas(),
            "headers": shared.header_components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "pk_live_..."}
            },
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
    schemas: dict[str, Any] = _renamed(top.get("$defs", {}))
    schemas["Pagination"] = shared.pagination_schema()
    return schemas


def _component_name(name: str) -> str:
    """`HoldPublic` is the `Hold` a client sees: generators and tools go by these names."""
    return name.removesuffix("Public")


def _renamed(schemas: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(schemas)
    for name in schemas:
        old, new = _REF.format(model=name), _REF.format(model=_component_name(name))
        text = text.replace(f'"{old}"', f'"{new}"')
    renamed: dict[str, Any] = json.loads(text)
    return {_component_name(name): schema for name, schema in renamed.items()}


def _operation(operation: Operation) -> dict[str, Any]:
    posted = operation.method == "post"
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": f"Scope: `{operation.scope}`.",
        "tags": [operation.tag],
        "parameters": _path_parameters(operation.path) + _query_parameters(operation.query),
        "responses": {str(operation.status): _success(operation)} | _errors(operation),
    }
    if operation.body is not None:
        spec["requestBody"] = {
            "required": operation.body_required,
            "content": {"application/json": {"schema": _ref(operation.body)}},
        }
    if posted:
        spec["parameters"].append(_IDEMPOTENCY_KEY)
    return spec


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes retries safe: 1 to 255 printable ASCII characters, scoped to the API "
    "key, method and path, kept 24 hours.",
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=_component_name(model.__name__))}


def _success(operation: Operation) -> dict[str, Any]:
    if operation.response is None:
        data: dict[str, Any] = {
            "type": "object",
            "properties": {"message": {"type": "string", "enum": ["Hold released"]}},
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
    response: dict[str, Any] = {
        "description": "Created" if operation.status == 201 else "Success",
        "headers": shared.headers_for(operation.status, posted=operation.method == "post"),
        "content": {"application/json": {"schema": body}},
    }
    if operation.links:
        response["links"] = {
            link.name: {
                "operationId": link.operation_id,
                "parameters": {link.parameter: "$response.body#/data/id"},
            }
            for link in operation.links
        }
    return response


def _errors(operation: Operation) -> dict[str, Any]:
    posted = operation.method == "post"
    codes: dict[int, list[str]] = {}
    tables: list[Mapping[int, tuple[str, ...]]] = [shared.AUTHENTICATED, operation.errors]
    if posted:
        tables.insert(1, shared.POSTED)
    for table in tables:
        for status, names in table.items():
            codes.setdefault(status, [])
            codes[status] += [name for name in names if name not in codes[status]]
    return {
        str(status): shared.error_response(status, tuple(codes[status]), posted=posted)
        for status in sorted(codes)
    }


def _path_parameters(path: str) -> list[dict[str, Any]]:
    kind = next((prefix for start, prefix in _PATH_IDS.items() if path.startswith(start)), "")
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": f"A `{kind}_...` id.",
            "schema": {"type": "string", "pattern": json_patterns.id_pattern(kind)},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    return [
        _query_parameter(name, prop, name in required)
        for name, prop in schema["properties"].items()
    ]


def _query_parameter(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    """A query parameter: an omitted one is the null of the model, so no null is listed."""
    schema = {key: value for key, value in prop.items() if key not in ("title", "description")}
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if branches:
        schema |= branches[0]
    if schema.get("default", ...) is None:
        del schema["default"]
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    parameter["allowEmptyValue"] = False  # `name=` is refused, never taken as absent
    if "description" in prop:
        parameter["description"] = prop["description"]
    return parameter
