"""Console: the last backup success and failure of each cluster (`backup_outcomes`).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backup_outcomes",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("backup_id", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("backup_outcomes")
