"""Resource ids: a type prefix and a UUID.

Holds and appointments carry a 16-bit shard tag in the first four hex digits of their UUID. The
tag is derived from (organisation, clinician) and names the Redis Cluster hash tag of every key
that clinician's scripts touch, so a hold can be found from its id alone in one round trip.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid

PREFIXES = ("hold", "apt", "type", "cli", "loc", "pat", "org", "whe", "evt")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VARIANT_DIGITS = "89ab"
_ID_PATTERNS = {prefix: re.compile(rf"{prefix}_{_UUID}") for prefix in PREFIXES}


def is_valid(prefix: str, value: str) -> bool:
    """Whether `value` is a well-formed id of the given kind (lower-case UUID)."""
    return _ID_PATTERNS[prefix].fullmatch(value) is not None


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4()}"


def shard_tag(org_id: str, clinician_id: str) -> str:
    """Four hex digits that group one clinician's keys on one Redis Cluster slot."""
    digest = hashlib.blake2b(f"{org_id}/{clinician_id}".encode(), digest_size=2).hexdigest()
    return digest


def new_tagged_id(prefix: str, tag: str) -> str:
    """A fresh id whose UUID starts with the shard tag (still a valid version-4 UUID)."""
    return tagged_id(prefix, tag, random_uuid_hex())


def random_uuid_hex() -> str:
    """`uuid.uuid4().hex` without building the UUID: 122 random bits, then the version (4)
    and variant (10xx) digits set, as RFC 9562 lays them out."""
    h = os.urandom(16).hex()
    return f"{h[:12]}4{h[13:16]}{_VARIANT_DIGITS[int(h[16], 16) & 3]}{h[17:]}"


def tagged_id(prefix: str, tag: str, uuid_hex: str) -> str:
    """The id of a version-4 UUID's 32 hex digits, its first four replaced by the shard tag
    (its version and variant digits lie past them)."""
    h = uuid_hex
    return f"{prefix}_{tag}{h[4:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def tag_of(tagged_id: str) -> str:
    """The shard tag carried by a hold or appointment id."""
    return tagged_id.split("_", 1)[1][:4]
