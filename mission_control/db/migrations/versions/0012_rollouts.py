"""Fleet rollouts (`mission-control rollouts`): each rollout and each of its clusters, and
when each cluster last reported a release refused or rolled back.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("release_refused_at", UTCDateTime()))
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("selector", sa.String(512), nullable=False),
        sa.Column("waves", sa.String(256), nullable=False),
        sa.Column("sizes", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("wave", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("deadline_s", sa.Float, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "rollout_clusters",
        sa.Column("rollout_id", sa.Integer, sa.ForeignKey("rollouts.id"), primary_key=True),
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("offered_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("failed_at", UTCDateTime()),
        sa.Column("failure", sa.Text),
    )
    op.create_index("ix_rollout_clusters_cluster", "rollout_clusters", ["cluster_id"])


def downgrade() -> None:
    op.drop_index("ix_rollout_clusters_cluster", "rollout_clusters")
    op.drop_table("rollout_clusters")
    op.drop_table("rollouts")
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("release_refused_at")
