"""Every Redis key name the service uses, built here and nowhere else.

All keys of one clinician share the hash tag `{T}`, four hex digits derived from organisation and
clinician and carried in hold and appointment ids, so each script touches one Redis Cluster slot:

    holds:{T}:occ:<clinician_id>   sorted set of the clinician's occupied intervals
    holds:{T}:hold:<hold_id>       hash: one hold, kept for the retention period after it ends
    holds:{T}:ttl:<epoch second>   expiry tick: a string that expires at that second, shared by
                                   every hold of the tag expiring then (its keyspace event)
    holds:{T}:expiries             sorted set: active hold ids by expiry time (the sweeper's index)
    holds:{T}:apt:<appointment_id> hash: one appointment, the working copy of its SQL row
    holds:{T}:pending              sorted set: appointment ids whose latest change SQL lacks
    holds:{T}:ready                present once the tag's appointments were restored from SQL
    holds:{T}:events               stream: the tag's outbox, one entry per change of a hold or
                                   appointment, appended by the script that makes the change
    holds:{T}:events:moved         the outbox entry up to which workers have kept events in SQL

Per API key, under its own hash tag `{key:<key id>}`:

    holds:{key:K}:rate             GCRA state of the key's rate limit
    holds:{key:K}:active           sorted set: the key's active hold ids by expiry (the cap)
    holds:{key:K}:idem:<digest>    hash: a stored response for an Idempotency-Key
"""

from __future__ import annotations

import re

from app.ids import tag_of

NAMESPACE = "holds"
_EXPIRY_TICK = re.compile(rf"{NAMESPACE}:\{{([0-9a-f]{{4}})\}}:ttl:[0-9]+")


def occupancy_prefix(tag: str) -> str:
    """Scripts that start from a hold id append the clinician id found in the record."""
    return f"{NAMESPACE}:{{{tag}}}:occ:"


def occupancy(tag: str, clinician_id: str) -> str:
    return occupancy_prefix(tag) + clinician_id


def hold_prefix(tag: str) -> str:
    """expire_due.lua appends the ids it takes from the tag's expiry index."""
    return f"{NAMESPACE}:{{{tag}}}:hold:"


def hold(hold_id: str) -> str:
    return hold_prefix(tag_of(hold_id)) + hold_id


def expiry_tick_prefix(tag: str) -> str:
    """create_hold.lua appends the expiry second, which only Redis' clock decides."""
    return f"{NAMESPACE}:{{{tag}}}:ttl:"


def tag_of_expiry_tick(key: str) -> str | None:
    """The hash tag whose expiry tick this is, or None for any other key."""
    match = _EXPIRY_TICK.fullmatch(key)
    return match.group(1) if match else None


def expiries(tag: str) -> str:
    return f"{NAMESPACE}:{{{tag}}}:expiries"


def appointment_prefix(tag: str) -> str:
    """pending_appointments.lua appends the ids it finds in the tag's backlog."""
    return f"{NAMESPACE}:{{{tag}}}:apt:"


def appointment(appointment_id: str) -> str:
    return appointment_prefix(tag_of(appointment_id)) + appointment_id


def pending(tag: str) -> str:
    return f"{NAMESPACE}:{{{tag}}}:pending"


def ready(tag: str) -> str:
    return f"{NAMESPACE}:{{{tag}}}:ready"


def events(tag: str) -> str:
    return f"{NAMESPACE}:{{{tag}}}:events"


def rate(api_key_id: str) -> str:
    return f"{NAMESPACE}:{{key:{api_key_id}}}:rate"


def active_holds(api_key_id: str) -> str:
    return f"{NAMESPACE}:{{key:{api_key_id}}}:active"


def idempotency(api_key_id: str, digest: str) -> str:
    return f"{NAMESPACE}:{{key:{api_key_id}}}:idem:{digest}"


def outbox_mover() -> str:
    """Which worker moves outbox entries into SQL now (a lease; any worker may take it over)."""
    return f"{NAMESPACE}:outbox-mover"


def events_moved(tag: str) -> str:
    """The outbox entry up to which workers have recorded events in SQL."""
    return f"{NAMESPACE}:{{{tag}}}:events:moved"
