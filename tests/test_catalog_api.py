"""The read-only catalog endpoints, paginated and scoped to the caller's organisation."""

from __future__ import annotations

import asyncio
import json

from app.catalog.loader import load_catalog
from app.db.engine import create_engine, session_factory
from tests.catalog import AMARA, INITIAL, OTHER_CLINICIAN, demo_plus_test_entries
from tests.conftest import Api, MakeApi


async def test_clinicians_are_listed_with_pagination(api: Api) -> None:
    status, body = await api.call("GET", "/clinicians?limit=2")
    assert status == 200
    assert len(body["data"]) == 2
    assert body["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}
    _, rest = await api.call("GET", "/clinicians?limit=2&offset=2")
    assert len(rest["data"]) == 1 and rest["pagination"]["has_more"] is False


async def test_one_clinician_by_id(api: Api) -> None:
    status, body = await api.call("GET", f"/clinicians/{AMARA}")
    assert status == 200
    assert body["data"]["name"] == "Dr Amara Okafor"


async def test_appointment_type_has_its_booking_rules(api: Api) -> None:
    _, body = await api.call("GET", f"/appointment-types/{INITIAL}")
    kind = body["data"]
    assert (kind["duration_minutes"], kind["slot_interval_minutes"]) == (30, 30)
    assert kind["price"] == 75.0 and kind["currency"] == "GBP"


async def test_locations_are_listed(api: Api) -> None:
    _, body = await api.call("GET", "/locations")
    assert {loc["name"] for loc in body["data"]} == {"Riverside Clinic", "Riverside Annexe"}


async def test_another_organisations_clinician_is_404(api: Api) -> None:
    status, body = await api.call("GET", f"/clinicians/{OTHER_CLINICIAN}")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_bad_pagination_is_400(api: Api) -> None:
    for query in ("limit=0", "limit=101", "offset=-1", "limit=ten"):
        status, body = await api.call("GET", f"/clinicians?{query}")
        assert status == 400, query
        assert body["error"]["param"] in ("limit", "offset")


async def test_whole_booking_flow_on_postgresql(make_api: MakeApi, postgres_url: str) -> None:
    api = await make_api(database_url=postgres_url)
    query = f"/availability?appointment_type_id={INITIAL}&start_date=2030-07-01&end_date=2030-07-01"
    _, slots = await api.call("GET", query)
    slot = slots["data"][0]
    body = {
        "appointment_type_id": INITIAL,
        "clinician_id": slot["clinician_id"],
        "location_id": slot["location_id"],
        "date": "2030-07-01",
        "start_time": "09:00",
    }
    status, hold = await api.call("POST", "/holds", body)
    assert status == 201
    assert hold["data"]["start_time"] == slot["start_time"]
    confirm = {"patient_id": "pat_789a0123-e89b-12d3-a456-426614174444"}
    status, appointment = await api.call("POST", f"/holds/{hold['data']['id']}/confirm", confirm)
    assert status == 201
    status, fetched = await api.call("GET", f"/appointments/{appointment['data']['id']}")
    assert (status, fetched["data"]["status"]) == (200, "confirmed")


async def test_catalog_changes_reach_the_api_within_the_cache_period(api: Api) -> None:
    _, before = await api.call("GET", f"/clinicians/{AMARA}")
    catalog = demo_plus_test_entries()
    catalog["organizations"][0]["clinicians"][0]["first_name"] = "Ama"
    engine = create_engine(api.settings.effective_database_url)
    await load_catalog(session_factory(engine), json.dumps(catalog))
    await engine.dispose()
    await asyncio.sleep(api.settings.cache_seconds + 0.1)
    _, after = await api.call("GET", f"/clinicians/{AMARA}")
    assert (before["data"]["first_name"], after["data"]["first_name"]) == ("Amara", "Ama")
