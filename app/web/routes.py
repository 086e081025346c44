"""The URL map."""

from __future__ import annotations

from aiohttp import web

from app.web.views import (
    appointments,
    availability,
    catalog,
    docs,
    health,
    hold_events,
    holds,
    metrics,
    patients,
    webhooks,
)


def add_routes(app: web.Application, base: str) -> None:
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.prometheus)
    app.router.add_get(f"{base}/openapi.json", docs.openapi_json)
    app.router.add_get(f"{base}/docs", docs.docs_page)
    if base:
        app.router.add_get("/docs", docs.docs_redirect)
    app.router.add_post(f"{base}/holds", holds.create_hold)
    app.router.add_get(f"{base}/holds/{{hold_id}}", holds.get_hold)
    app.router.add_delete(f"{base}/holds/{{hold_id}}", holds.release_hold)
    app.router.add_post(f"{base}/holds/{{hold_id}}/confirm", holds.confirm_hold)
    app.router.add_post(f"{base}/holds/{{hold_id}}/extend", holds.extend_hold)
    app.router.add_get(f"{base}/holds/{{hold_id}}/events", hold_events.hold_events)
    app.router.add_get(f"{base}/appointments", appointments.list_appointments)
    app.router.add_get(f"{base}/appointments/{{appointment_id}}", appointments.get_appointment)
    app.router.add_post(
        f"{base}/appointments/{{appointment_id}}/cancel", appointments.cancel_appointment
    )
    app.router.add_get(f"{base}/patients", patients.list_patients)
    app.router.add_post(f"{base}/patients", patients.create_patient)
    app.router.add_get(f"{base}/patients/{{id}}", patients.get_patient)
    app.router.add_get(f"{base}/availability", availability.availability)
    app.router.add_get(f"{base}/appointment-types", catalog.list_appointment_types)
    app.router.add_get(f"{base}/appointment-types/{{id}}", catalog.get_appointment_type)
    app.router.add_get(f"{base}/clinicians", catalog.list_clinicians)
    app.router.add_get(f"{base}/clinicians/{{id}}", catalog.get_clinician)
    app.router.add_get(f"{base}/locations", catalog.list_locations)
    app.router.add_get(f"{base}/locations/{{id}}", catalog.get_location)
    app.router.add_post(f"{base}/webhook-endpoints", webhooks.create_endpoint)
    app.router.add_get(f"{base}/webhook-endpoints", webhooks.list_endpoints)
    app.router.add_get(f"{base}/webhook-endpoints/{{id}}", webhooks.get_endpoint)
    app.router.add_delete(f"{base}/webhook-endpoints/{{id}}", webhooks.delete_endpoint)
    app.router.add_get(f"{base}/events", webhooks.list_events)
