"""Restore drills each cluster reported, for the console's last drill, RTO, RPO and trend.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "restore_drills",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("drill_id", sa.String(64), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("backup_id", sa.String(64)),
        sa.Column("rto_seconds", sa.Float),
        sa.Column("rpo_seconds", sa.Float),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("decrypted", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_restore_drills_cluster_at", "restore_drills", ["cluster_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_restore_drills_cluster_at", "restore_drills")
    op.drop_table("restore_drills")
