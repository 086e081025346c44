"""`holds catalog load`: validate a whole catalog file, then apply it in one transaction."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.catalog.file import CatalogFile, OrganizationEntry, time_off_json
from app.db import catalog_repo, models
from app.errors import CatalogError

_SECTIONS: list[tuple[str, Any]] = [
    ("locations", models.Location),
    ("clinicians", models.Clinician),
    ("appointment_types", models.AppointmentType),
    ("patients", models.Patient),
]


def parse_catalog(text: str) -> CatalogFile:
    """The file's content as a CatalogFile, or CatalogError naming the first bad entry and field."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise CatalogError(f"not valid JSON: {exc.msg} at {where}") from None
    try:
        return CatalogFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _error_path(first["loc"], raw)
        raise CatalogError(f"{where}: {first['msg']}") from None


def _error_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """`organizations[0].clinicians[1] (cli_...).schedule[0].start`: names the entry by its id."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
            entry_id = node.get("id") if isinstance(node, dict) else None
            parts[-1] += f"[{step}]" + (f" ({entry_id})" if isinstance(entry_id, str) else "")
        else:
            node = node.get(step) if isinstance(node, dict) else None
            parts.append(str(step))
    return ".".join(parts) or "file"


def read_catalog_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read {path}: {exc}") from None


async def load_catalog(sessions: async_sessionmaker[AsyncSession], text: str) -> list[str]:
    """Apply a catalog file's text; returns one line per kind of entry saying what changed."""
    catalog = parse_catalog(text)
    _check_unique_ids(catalog)
    changes: Counter[tuple[str, str]] = Counter()
    async with sessions.begin() as session:
        for org in catalog.organizations:
            await _check_references(session, org)
            changed = {await _upsert_org(session, org)}
            for section, model in _SECTIONS:
                for index, entry in enumerate(getattr(org, section)):
                    values = _row_values(section, entry, org.id)
                    where = f"organizations[{org.id}].{section}[{index}] ({entry.id})"
                    await _check_owner(session, model, entry.id, org.id, where)
                    change = await catalog_repo.upsert(session, model, values)
                    changes[(section, change)] += 1
                    changed.add(change)
            changes[("organizations", min(changed - {"unchanged"}, default="unchanged"))] += 1
            if changed != {"unchanged"}:
                await catalog_repo.touch_org(session, org.id)
    return _summary(changes)


async def _upsert_org(session: AsyncSession, org: OrganizationEntry) -> catalog_repo.Change:
    values = {"id": org.id, "name": org.name, "timezone": org.timezone}
    return await catalog_repo.upsert(session, models.Organization, values)


def _row_values(section: str, entry: Any, org_id: str) -> dict[str, Any]:
    values: dict[str, Any] = entry.model_dump(mode="json") | {"org_id": org_id}
    if section == "clinicians":
        values["time_off"] = [time_off_json(off) for off in entry.time_off]
    if section == "patients":
        values["date_of_birth"] = entry.date_of_birth
    return values


def _check_unique_ids(catalog: CatalogFile) -> None:
    seen: set[str] = set()
    for org in catalog.organizations:
        ids = [org.id] + [e.id for section, _ in _SECTIONS for e in getattr(org, section)]
        for entry_id in ids:
            if entry_id in seen:
                raise CatalogError(f"{entry_id}: appears more than once in the file")
            seen.add(entry_id)


async def _check_owner(
    session: AsyncSession, model: Any, entry_id: str, org_id: str, where: str
) -> None:
    owner = (await catalog_repo.owners(session, model, {entry_id})).get(entry_id)
    if owner is not None and owner != org_id:
        raise CatalogError(f"{where}: this id already belongs to another organisation")


async def _check_references(session: AsyncSession, org: OrganizationEntry) -> None:
    """Schedules name locations, and types name clinicians, of the same organisation."""
    locations = {loc.id for loc in org.locations}
    clinicians = {cli.id for cli in org.clinicians}
    for index, cli in enumerate(org.clinicians):
        wanted = {block.location_id for block in cli.schedule if block.location_id} - locations
        missing = wanted - await _ids_in_org(session, models.Location, wanted, org.id)
        if missing:
            where = f"organizations[{org.id}].clinicians[{index}] ({cli.id}).schedule"
            raise CatalogError(f"{where}: unknown location {sorted(missing)[0]}")
    for index, kind in enumerate(org.appointment_types):
        wanted = set(kind.clinician_ids) - clinicians
        missing = wanted - await _ids_in_org(session, models.Clinician, wanted, org.id)
        if missing:
            where = f"organizations[{org.id}].appointment_types[{index}] ({kind.id}).clinician_ids"
            raise CatalogError(f"{where}: unknown clinician {sorted(missing)[0]}")


async def _ids_in_org(session: AsyncSession, model: Any, ids: set[str], org_id: str) -> set[str]:
    found = await catalog_repo.owners(session, model, ids)
    return {entry_id for entry_id, owner in found.items() if owner == org_id}


def _summary(changes: Counter[tuple[str, str]]) -> list[str]:
    lines = []
    for section in ["organizations"] + [name for name, _ in _SECTIONS]:
        counts = {kind: changes[(section, kind)] for kind in ("created", "updated", "unchanged")}
        if any(counts.values()):
            detail = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
            lines.append(f"{section}: {detail}")
    return lines
