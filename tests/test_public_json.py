"""The hold endpoints render holds without pydantic: byte for byte what the models render;
and a hold's client_secret goes nowhere else."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from app.domain.records import Hold
from app.domain.slots import Interval
from app.public import TIMESTAMP_OPTIONS, HoldCreatedPublic, HoldPublic, hold_fields
from app.store.holds import NewHold

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
ids = st.text(alphabet="abcdef0123456789_-", min_size=1, max_size=60)
holds = st.builds(
    Hold,
    id=ids,
    org_id=ids,
    api_key_id=ids,
    appointment_type_id=ids,
    clinician_id=ids,
    location_id=st.none() | ids,
    start_time=moments,
    end_time=moments,
    expires_at=moments,
    status=st.sampled_from(["active", "confirmed", "released", "expired"]),
    created_at=moments,
    appointment_id=st.none() | ids,
    client_secret=st.none() | st.text(alphabet="abcdefXYZ0189-_", min_size=32, max_size=64),
)


@given(hold=holds)
def test_a_hold_renders_as_its_model_renders_it(hold: Hold) -> None:
    model = HoldPublic if hold.client_secret is None else HoldCreatedPublic
    by_model = orjson.dumps(model.model_validate(hold).model_dump(mode="json"))
    assert orjson.dumps(hold_fields(hold), option=TIMESTAMP_OPTIONS) == by_model


def test_every_field_of_the_models_is_rendered() -> None:
    moment = datetime(2030, 1, 21, 9, tzinfo=UTC)
    hold = Hold("hold_1", "org_1", "key_1", "type_1", "cli_1", None, moment, moment, moment,
                "active", moment, None, "s" * 43)  # fmt: skip
    assert list(hold_fields(hold)) == list(HoldCreatedPublic.model_fields)
    plain = dataclasses.replace(hold, client_secret=None)
    assert list(hold_fields(plain)) == list(HoldPublic.model_fields)


def test_a_client_secret_never_shows_in_a_log_line() -> None:
    """Holds are logged by repr when something goes wrong; the secret must not go with them."""
    moment = datetime(2030, 1, 21, 9, tzinfo=UTC)
    secret = "s3cr3t" * 7
    hold = Hold("hold_1", "org_1", "key_1", "type_1", "cli_1", None, moment, moment, moment,
                "active", moment, None, secret)  # fmt: skip
    new_hold = NewHold("hold_1", "org_1", "key_1", "type_1", "cli_1", None, moment, moment,
                       Interval(moment, moment), client_secret=secret)  # fmt: skip
    assert secret not in repr(hold) and secret not in repr(new_hold)
