"""Every Prometheus metric of the API and the workers, defined once.

An ops team reads these to know when to add workers: a growing `holds_queue_depth`,
`holds_persistence_backlog` or `holds_expiry_cleanup_lag_seconds` means the workers are behind.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUEST_SECONDS = Histogram(
    "holds_http_request_duration_seconds",
    "HTTP request latency by route, method and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
HOLDS_CREATED = Counter("holds_created_total", "Holds created.")
HOLDS_CONFIRMED = Counter("holds_confirmed_total", "Holds confirmed into appointments.")
HOLDS_RELEASED = Counter("holds_released_total", "Holds released by their client.")
HOLDS_EXTENDED = Counter("holds_extended_total", "Holds whose countdown started again.")
HOLDS_EXPIRED = Counter("holds_expired_total", "Holds expired and cleaned up by a worker.")
SLOT_CONFLICTS = Counter("holds_slot_conflicts_total", "Hold requests refused as overlapping.")
APPOINTMENTS_CANCELLED = Counter("holds_appointments_cancelled_total", "Appointments cancelled.")

ACTIVE_HOLDS = Gauge("holds_active", "Holds not yet confirmed, released or cleaned up.")
PERSISTENCE_BACKLOG = Gauge(
    "holds_persistence_backlog", "Appointment changes in Redis that SQL does not have yet."
)
QUEUE_DEPTH = Gauge("holds_queue_depth", "Jobs waiting in the arq queue.")
QUEUE_OLDEST_AGE = Gauge(
    "holds_queue_oldest_job_age_seconds", "How long the oldest queued job has waited."
)

JOB_SECONDS = Histogram(
    "holds_job_duration_seconds", "Worker job duration.", ["job"], buckets=_LATENCY_BUCKETS
)
JOB_RETRIES = Counter("holds_job_retries_total", "Jobs deferred for another try.", ["job"])
JOB_FAILURES = Counter("holds_job_failures_total", "Job runs that raised.", ["job"])
PERSISTED = Counter("holds_appointments_persisted_total", "Appointment versions written to SQL.")
PERSISTENCE_CONFLICTS = Counter(
    "holds_persistence_conflicts_total",
    "Appointments that overlapped one SQL already had (kept, marked, and logged).",
)
RECONCILED = Counter(
    "holds_appointments_reconciled_total", "Appointments persisted by the reconciler, not a job."
)
EXPIRY_LAG_SECONDS = Histogram(
    "holds_expiry_cleanup_lag_seconds",
    "Time from a hold's expires_at to its cleanup.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
APPOINTMENTS_RESTORED = Counter(
    "holds_appointments_restored_total", "Appointments given back to an empty Redis from SQL."
)
CONFIRM_UNREPLICATED = Counter(
    "holds_confirm_unreplicated_total",
    "Confirms answered 201 before any replica of their Redis Cluster master had them.",
)
REDIS_PIPELINE_BATCH = Histogram(
    "holds_redis_pipeline_batch_commands",
    "Redis commands sent together in one write by the API's auto-pipelining client.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
WEBHOOK_DELIVERIES = Counter(
    "holds_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered, retrying, failed (out of retries).",
    ["outcome"],
)
WEBHOOK_DELIVERY_LAG = Histogram(
    "holds_webhook_delivery_lag_seconds",
    "Time from a change to its event's successful delivery.",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 60.0, 600.0, 3600.0),
)
WEBHOOK_RETRY_BACKLOG = Gauge(
    "holds_webhook_retry_backlog",
    "Deliveries waiting for another attempt after a failure, per endpoint.",
    ["endpoint"],
)
WEBHOOK_ENDPOINTS_DISABLED = Gauge(
    "holds_webhook_endpoints_disabled", "Endpoints disabled after failing for days."
)
