"""The release offered to each cluster (`mission-control releases offer`).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_offers",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
        sa.Column("offered_by", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("release_offers")
