"""Inputs at the edges of what the document admits: refused with a 400 naming the field."""

from __future__ import annotations

import pytest

from tests.catalog import AMARA, INITIAL
from tests.conftest import Api
from tests.helpers import hold_body


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1899-12-31", "3000-01-01"])
@pytest.mark.parametrize("route", ["availability", "appointments"])
async def test_dates_outside_1900_to_2999_are_400(api: Api, route: str, day: str) -> None:
    query = f"appointment_type_id={INITIAL}&start_date={day}&end_date={day}"
    status, body = await api.call("GET", f"/{route}?{query}")
    assert status == 400
    assert (body["error"]["code"], body["error"]["param"]) == ("invalid_request", "start_date")


async def test_start_time_with_non_ascii_digits_is_400(api: Api) -> None:
    # Arabic-Indic nine and zero: int() reads them, the contract allows ASCII digits only.
    status, body = await api.call("POST", "/holds", hold_body(start_time="0\u0669:3\u0660"))
    assert status == 400
    assert body["error"]["param"] == "start_time"


@pytest.mark.parametrize("name", ["clinician_id", "patient_id"])
async def test_appointments_filter_with_a_malformed_id_is_400(api: Api, name: str) -> None:
    status, body = await api.call("GET", f"/appointments?{name}=0")
    assert status == 400
    assert body["error"]["param"] == name
    status, _ = await api.call("GET", f"/appointments?clinician_id={AMARA}")
    assert status == 200
