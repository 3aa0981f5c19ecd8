"""Initial schema: clusters, licenses, messages (dedupe), consumption, alerts, staff tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("geography", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("enrollment_token_hash", sa.String(64), unique=True),
        sa.Column("enrollment_expires_at", UTCDateTime()),
        sa.Column("credential_hash", sa.String(64), unique=True),
        sa.Column("enrolled_at", UTCDateTime()),
        sa.Column("last_epoch", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_health_at", UTCDateTime()),
        sa.Column("health_status", sa.String(16)),
        sa.Column("last_health", sa.JSON),
        sa.Column("last_heartbeat_at", UTCDateTime()),
        sa.Column("host_units_in_use", sa.Float),
    )
    op.create_table(
        "licenses",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("host_units", sa.Float, nullable=False),
        sa.Column("expires", sa.Date, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_table(
        "consumption",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("environment", sa.String(128), primary_key=True),
        sa.Column("period_start", UTCDateTime(), primary_key=True),
        sa.Column("host_units", sa.Float, nullable=False),
        sa.Column("host_unit_hours", sa.Float, nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("cleared_at", UTCDateTime()),
    )
    open_only = sa.text("cleared_at IS NULL")
    op.create_index(
        "uq_alerts_open",
        "alerts",
        ["cluster_id", "kind"],
        unique=True,
        sqlite_where=open_only,
        postgresql_where=open_only,
    )
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])
    op.create_table(
        "staff_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
    )
    op.create_index("ix_staff_tokens_user_name", "staff_tokens", ["user_name"])


def downgrade() -> None:
    for table in ("staff_tokens", "alerts", "consumption", "messages", "licenses", "clusters"):
        op.drop_table(table)
