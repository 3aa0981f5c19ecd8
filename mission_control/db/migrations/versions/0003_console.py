"""Console: browser sessions, per-cluster health history, indexes for the fleet page.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
    )
    op.create_index("ix_console_sessions_last_seen_at", "console_sessions", ["last_seen_at"])
    op.create_table(
        "health_samples",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("at", UTCDateTime(), primary_key=True),
        sa.Column("nodes_up", sa.Integer, nullable=False),
        sa.Column("cpu_percent", sa.Float, nullable=False),
        sa.Column("memory_used_bytes", sa.BigInteger, nullable=False),
        sa.Column("memory_total_bytes", sa.BigInteger, nullable=False),
        sa.Column("disk_used_bytes", sa.BigInteger, nullable=False),
        sa.Column("disk_total_bytes", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_health_samples_at", "health_samples", ["at"])
    op.create_index(
        "ix_clusters_console_fleet",
        "clusters",
        ["name", "id", "geography", "health_status", "enrolled_at"],
    )
    open_only = sa.text("cleared_at IS NULL")
    op.create_index(
        "ix_alerts_console_open_kind",
        "alerts",
        ["kind", "cluster_id"],
        sqlite_where=open_only,
        postgresql_where=open_only,
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_console_open_kind", table_name="alerts")
    op.drop_index("ix_clusters_console_fleet", table_name="clusters")
    op.drop_table("health_samples")
    op.drop_table("console_sessions")
