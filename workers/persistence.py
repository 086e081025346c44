"""Making every confirmed appointment durable: the per-appointment job and the reconciler."""

from __future__ import annotations

import logging
import time
from typing import Any

from arq import Retry
from sqlalchemy.exc import SQLAlchemyError

from app import metrics
from workers.context import WorkerContext

log = logging.getLogger("holds.worker.persistence")
# The reconciler leaves a change this long to its own job before persisting it itself.
JOB_GRACE_SECONDS = 2.0


async def persist_appointment(ctx: dict[str, Any], appointment_id: str) -> str:
    """Write an appointment's latest version to SQL; retried with backoff on database errors."""
    worker: WorkerContext = ctx["holds"]
    started = time.perf_counter()
    try:
        appointment = await worker.appointments.persist(appointment_id)
    except (SQLAlchemyError, OSError) as exc:
        metrics.JOB_RETRIES.labels("persist_appointment").inc()
        delay = min(2 ** ctx.get("job_try", 1), 30)
        log.warning(
            "database error; retrying",
            extra={
                "appointment_id": appointment_id,
                "error": type(exc).__name__,
                "retry_in": delay,
            },
        )
        raise Retry(defer=delay) from exc
    except Exception:
        metrics.JOB_FAILURES.labels("persist_appointment").inc()
        raise
    finally:
        metrics.JOB_SECONDS.labels("persist_appointment").observe(time.perf_counter() - started)
    return "gone" if appointment is None else "persisted"


async def reconcile(ctx: dict[str, Any]) -> int:
    """Persist every appointment change SQL still lacks, however its job was lost: the API died
    before enqueueing, a worker died mid-job, or the job ran out of tries."""
    worker: WorkerContext = ctx["holds"]
    started = time.perf_counter()
    pending = await worker.upkeep.pending_appointments(
        await worker.tags(), changed_before=time.time() - JOB_GRACE_SECONDS
    )
    done = 0
    for appointment_id in pending:
        try:
            appointment = await worker.appointments.persist(appointment_id)
        except (SQLAlchemyError, OSError):
            log.warning(
                "reconciler could not persist yet", extra={"appointment_id": appointment_id}
            )
            continue
        if appointment is not None:
            metrics.RECONCILED.inc()
            done += 1
    metrics.JOB_SECONDS.labels("reconcile").observe(time.perf_counter() - started)
    return done
