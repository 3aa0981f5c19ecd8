"""Data centers: each cluster's last reported sites (data centers and the witness) and the rule
that gave it quorum, for the cluster page.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("last_datacenters", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("last_datacenters")
