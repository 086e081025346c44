"""Group sessions: the seats of one session may share its time, and nothing else may.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Two confirmed appointments of a clinician conflict when their occupied times overlap, unless
# both are seats of one group session. An exclusive appointment has no session key and stands
# for itself (its own id), so it conflicts with everything it overlaps, as before.
_NO_OVERLAP = (
    "ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap EXCLUDE USING gist "
    "(clinician_id WITH =, (coalesce(session_key, id)) WITH <>, "
    "tstzrange(occupied_start, occupied_end, '[)') WITH &&) "
    "WHERE (status = 'confirmed' AND conflict_with IS NULL)"
)
_EXCLUSIVE_ONLY = (
    "ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap EXCLUDE USING gist "
    "(clinician_id WITH =, tstzrange(occupied_start, occupied_end, '[)') WITH &&) "
    "WHERE (status = 'confirmed' AND conflict_with IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("appointments") as table:
        table.add_column(sa.Column("session_key", sa.String(16)))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE appointments DROP CONSTRAINT appointments_no_overlap")
        op.execute(_NO_OVERLAP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE appointments DROP CONSTRAINT appointments_no_overlap")
        op.execute(_EXCLUSIVE_ONLY)
    with op.batch_alter_table("appointments") as table:
        table.drop_column("session_key")
