"""The reference many booking systems use instead: holds as PostgreSQL rows, kept apart by an
exclusion constraint, inserted by pgbench with 16 clients. Database only: no HTTP, no rules.

    python -m benchmarks.postgres_holds [--url postgresql://postgres@127.0.0.1:5432/postgres]
                                        [--seconds 10] [--clients 16]

Creates (and afterwards drops) a table in a scratch database and prints inserts per second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

SCRATCH_DATABASE = "holds_pgbench"

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
DROP TABLE IF EXISTS slot_holds;
CREATE TABLE slot_holds (
    id bigserial PRIMARY KEY,
    clinician integer NOT NULL,
    during tstzrange NOT NULL,
    expires_at timestamptz NOT NULL,
    EXCLUDE USING gist (clinician WITH =, during WITH &&)
);
"""

# One hold per transaction on a random clinician and 15-minute slot; a clash is skipped by
# ON CONFLICT DO NOTHING (which exclusion constraints support), as a refused hold would be.
_TRANSACTION = r"""
\set clinician random(1, 100000)
\set slot random(0, 100000)
INSERT INTO slot_holds (clinician, during, expires_at)
VALUES (:clinician,
        tstzrange(timestamptz '2031-01-01' + :slot * interval '15 minutes',
                  timestamptz '2031-01-01' + (:slot + 1) * interval '15 minutes'),
        now() + interval '15 minutes')
ON CONFLICT DO NOTHING;
"""


async def _scratch_database(url: str) -> str:
    """The scratch database's URL, created with the table on first use."""
    connection = await asyncpg.connect(url)
    try:
        exists = await connection.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", SCRATCH_DATABASE
        )
        if not exists:
            await connection.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    finally:
        await connection.close()
    scratch = make_url(url).set(database=SCRATCH_DATABASE).render_as_string(hide_password=False)
    connection = await asyncpg.connect(scratch)
    try:
        await connection.execute(_SCHEMA)
    finally:
        await connection.close()
    return scratch


async def _drop_table(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DROP TABLE IF EXISTS slot_holds")
    finally:
        await connection.close()


def measure(url: str, seconds: float, clients: int) -> float:
    """Inserts per second, or raises SystemExit saying why it could not run."""
    if shutil.which("pgbench") is None:
        raise SystemExit("pgbench is not installed (Debian: postgresql-client)")
    try:
        scratch = asyncio.run(_scratch_database(url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise SystemExit(f"PostgreSQL at {url} is not reachable: {exc}") from exc
    target = make_url(scratch)
    with tempfile.TemporaryDirectory(prefix="holds-pgbench-") as scratch_dir:
        script = Path(scratch_dir) / "hold.sql"
        script.write_text(_TRANSACTION)
        command = ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(int(seconds))]
        command += ["-f", str(script), "-h", target.host or "127.0.0.1"]
        command += ["-p", str(target.port or 5432), "-U", target.username or "postgres"]
        command += [SCRATCH_DATABASE]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    asyncio.run(_drop_table(scratch))
    found = re.search(r"tps = ([0-9.]+)", finished.stdout)
    if finished.returncode != 0 or found is None:
        raise SystemExit(f"pgbench failed:\n{finished.stdout}\n{finished.stderr}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    inserts = measure(args.url, args.seconds, args.clients)
    print(
        f"PostgreSQL exclusion-constraint holds: {inserts:.0f} inserts/s ({args.clients} clients)"
    )


if __name__ == "__main__":
    main()
