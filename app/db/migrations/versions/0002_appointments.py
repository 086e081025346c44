"""Durable appointments, with no two confirmed ones of a clinician overlapping.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from app.db.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("org_id", sa.String(64), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("shard_tag", sa.String(4), nullable=False),
        sa.Column("hold_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("clinician_id", sa.String(64), nullable=False),
        sa.Column("appointment_type_id", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(64)),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("end_time", UtcDateTime(), nullable=False),
        sa.Column("occupied_start", UtcDateTime(), nullable=False),
        sa.Column("occupied_end", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attendee_name", sa.Text()),
        sa.Column("attendee_email", sa.Text()),
        sa.Column("attendee_phone", sa.Text()),
        sa.Column("notes", sa.Text()),
        sa.Column("cancel_reason", sa.Text()),
        sa.Column("conflict_with", sa.String(64)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    for column in ("org_id", "shard_tag", "patient_id", "clinician_id", "start_time"):
        op.create_index(f"ix_appointments_{column}", "appointments", [column])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap EXCLUDE USING gist "
            "(clinician_id WITH =, tstzrange(occupied_start, occupied_end, '[)') WITH &&) "
            "WHERE (status = 'confirmed' AND conflict_with IS NULL)"
        )


def downgrade() -> None:
    op.drop_table("appointments")
