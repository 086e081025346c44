"""`holds catalog load` and `holds keys ...` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import cli
from app.db import models
from app.db.engine import create_engine, session_factory
from tests.catalog import AMARA, ORG, demo_plus_test_entries


@pytest.fixture
def run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Any:
    monkeypatch.setenv("HOLDS_DATABASE_URL", database_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _write(tmp_path: Path, catalog: dict[str, Any]) -> str:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return str(path)


def _count(database_url: str, model: Any) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        async with session_factory(engine)() as session:
            total = await session.scalar(select(func.count()).select_from(model))
        await engine.dispose()
        return int(total or 0)

    return asyncio.run(count())


def test_load_reports_what_it_created_then_that_nothing_changed(run: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, demo_plus_test_entries())
    code, out, _ = run("catalog", "load", path)
    assert code == 0
    assert "clinicians: 4 created" in out
    code, out, _ = run("catalog", "load", path)
    assert "clinicians: 4 unchanged" in out


def test_load_updates_changed_entries(run: Any, tmp_path: Path) -> None:
    catalog = demo_plus_test_entries()
    run("catalog", "load", _write(tmp_path, catalog))
    catalog["organizations"][0]["clinicians"][0]["first_name"] = "Amy"
    _, out, _ = run("catalog", "load", _write(tmp_path, catalog))
    assert "clinicians: 1 updated, 3 unchanged" in out


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda c: c["organizations"][0]["clinicians"][0]["schedule"][0].update(start="9:00"),
            f"clinicians[0] ({AMARA}).schedule[0].start",
        ),
        (
            lambda c: c["organizations"][0]["clinicians"][0]["schedule"][0].update(end="08:00"),
            f"clinicians[0] ({AMARA}).schedule[0]",
        ),
        (lambda c: c["organizations"][0].update(timezone="Mars/Olympus"), "timezone"),
        (
            lambda c: c["organizations"][0]["appointment_types"][0]["clinician_ids"].append(
                "cli_00000000-0000-4000-8000-00000000dead"
            ),
            "clinician_ids",
        ),
        (lambda c: c["organizations"][0]["clinicians"][0].update(colour="blue"), "colour"),
    ],
)
def test_bad_file_changes_nothing_and_names_the_entry(
    run: Any, tmp_path: Path, database_url: str, change: Any, named: str
) -> None:
    catalog = copy.deepcopy(demo_plus_test_entries())
    change(catalog)
    code, _, err = run("catalog", "load", _write(tmp_path, catalog))
    assert code == 1
    assert named in err
    assert _count(database_url, models.Clinician) == 0


def test_invalid_json_is_a_clear_error(run: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"organizations": [')
    code, _, err = run("catalog", "load", str(path))
    assert code == 1
    assert "not valid JSON" in err


def test_key_is_printed_alone_on_the_last_line_and_listed_by_prefix(
    run: Any, tmp_path: Path
) -> None:
    run("catalog", "load", _write(tmp_path, demo_plus_test_entries()))
    code, out, _ = run("keys", "create", "--org", ORG, "--scopes", "write_holds", "--name", "web")
    assert code == 0
    key = out.strip().splitlines()[-1]
    assert key.startswith("pk_live_") and len(key) > 40
    _, listing, _ = run("keys", "list", "--org", ORG)
    assert key[:16] in listing
    assert key not in listing
    assert "web" in listing and "active" in listing


def test_revoked_key_lists_as_revoked(run: Any, tmp_path: Path) -> None:
    run("catalog", "load", _write(tmp_path, demo_plus_test_entries()))
    _, out, _ = run("keys", "create", "--org", ORG, "--scopes", "write_holds", "--test")
    key = out.strip().splitlines()[-1]
    assert key.startswith("pk_test_")
    assert run("keys", "revoke", key[:16])[0] == 0
    _, listing, _ = run("keys", "list")
    assert "revoked" in listing


def test_key_for_an_unknown_scope_or_organisation_is_refused(run: Any, tmp_path: Path) -> None:
    run("catalog", "load", _write(tmp_path, demo_plus_test_entries()))
    code, _, err = run("keys", "create", "--org", ORG, "--scopes", "write_everything")
    assert code == 1 and "unknown scope" in err
    code, _, err = run("keys", "create", "--org", "org_nope", "--scopes", "write_holds")
    assert code == 1 and "no organisation" in err


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("HOLDS_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", "0", "greater than or equal to 1"),
        ("HOLDS_HOLD_TTL_SECONDS", "soon", "valid integer"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    variable: str, value: str, says: str,
) -> None:  # fmt: skip
    monkeypatch.setenv(variable, value)
    assert cli.main(["worker", "--check"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and err.startswith(f"error: {variable}: ")
    assert says in err and "Traceback" not in err
