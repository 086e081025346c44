"""Every Redis key name the service uses, built here and nowhere else.

All keys of one clinician share the hash tag `{T}`, four hex digits derived from organisation and
clinician and carried in hold and appointment ids, so each script touches one Redis Cluster slot:

    holds:{T}:occ:<clinician_id>   sorted set of the clinician's occupied intervals
    holds:{T}:hold:<hold_id>       hash: one hold, kept for the retention period after it ends
    holds:{T}:apt:<appointment_id> hash: one confirmed appointment
"""

from __future__ import annotations

from app.ids import tag_of

NAMESPACE = "holds"


def occupancy_prefix(tag: str) -> str:
    """Scripts that start from a hold id append the clinician id found in the record."""
    return f"{NAMESPACE}:{{{tag}}}:occ:"


def occupancy(tag: str, clinician_id: str) -> str:
    return occupancy_prefix(tag) + clinician_id


def hold(hold_id: str) -> str:
    return f"{NAMESPACE}:{{{tag_of(hold_id)}}}:hold:{hold_id}"


def appointment(appointment_id: str) -> str:
    return f"{NAMESPACE}:{{{tag_of(appointment_id)}}}:apt:{appointment_id}"
