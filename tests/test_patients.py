"""Patients: created, read and listed within the caller's organisation; then bookable."""

from __future__ import annotations

import pytest

from tests.catalog import OTHER_PATIENT, PATIENT
from tests.conftest import Api
from tests.helpers import confirm_body, hold_body

NEW_PATIENT = {"first_name": "Ada", "last_name": "Lovelace", "date_of_birth": "1990-12-10"}


async def test_created_patient_can_be_read_and_booked(api: Api) -> None:
    status, created = await api.call(
        "POST", "/patients", NEW_PATIENT | {"email": "ada@example.com"}
    )
    assert status == 201
    patient = created["data"]
    assert patient["id"].startswith("pat_")
    assert patient["date_of_birth"] == "1990-12-10"
    assert (await api.call("GET", f"/patients/{patient['id']}")) == (200, created)
    _, hold = await api.call("POST", "/holds", hold_body())
    status, _ = await api.call(
        "POST", f"/holds/{hold['data']['id']}/confirm", confirm_body(patient["id"])
    )
    assert status == 201


async def test_patients_are_listed_by_name(api: Api) -> None:
    await api.call("POST", "/patients", NEW_PATIENT)
    status, body = await api.call("GET", "/patients")
    assert status == 200
    assert [p["last_name"] for p in body["data"]] == ["Johnson", "Lovelace"]
    assert body["pagination"]["total"] == 2


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"first_name": ""}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"date_of_birth": "10/12/1990"}, "date_of_birth"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "1990-02-30"}, "date_of_birth"),
    ],
)
async def test_bad_patient_is_400_and_creates_nothing(
    api: Api, change: dict[str, object], param: str
) -> None:
    status, body = await api.call("POST", "/patients", NEW_PATIENT | change)
    assert (status, body["error"]["code"], body["error"]["param"]) == (
        400,
        "invalid_request",
        param,
    )
    assert (await api.call("GET", "/patients"))[1]["pagination"]["total"] == 1


async def test_another_organisations_patient_is_404(api: Api) -> None:
    assert (await api.call("GET", f"/patients/{PATIENT}"))[0] == 200
    status, body = await api.call("GET", f"/patients/{OTHER_PATIENT}")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_patient_scopes_are_enforced(api: Api) -> None:
    status, _ = await api.call("POST", "/patients", NEW_PATIENT, key=api.lacking["write_patients"])
    assert status == 403
    status, _ = await api.call("GET", "/patients", key=api.lacking["read_patients"])
    assert status == 403
