"""Hold and appointment ids: version-4 UUIDs that carry their shard tag."""

from __future__ import annotations

import uuid

from app import ids


def test_tagged_ids_are_distinct_version_4_uuids_carrying_their_tag() -> None:
    made = [ids.new_tagged_id("hold", "beef") for _ in range(5000)]
    assert len(set(made)) == len(made)
    for hold_id in made:
        assert ids.is_valid("hold", hold_id)
        assert ids.tag_of(hold_id) == "beef"
        parsed = uuid.UUID(hold_id.removeprefix("hold_"))
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


def test_every_variant_digit_appears() -> None:
    """The variant digit is 8, 9, a or b: two of its bits are random, not fixed."""
    digits = {ids.random_uuid_hex()[16] for _ in range(400)}
    assert digits == set("89ab")
