"""Credentials that can be found and revoked: a cluster's renewal secret and the record of a
credential reported leaked.

`renewal_hash` is the digest of the cluster's renewal secret (``mcr_``), which buys one new
credential after a leak; `leaked_credential_hash` keeps the digest of the revoked credential so
its next use is answered `credential_revoked` (the cluster then renews) rather than a bare 401.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("renewal_hash", sa.String(64)))
        batch.add_column(sa.Column("leaked_credential_hash", sa.String(64)))
        batch.add_column(sa.Column("credential_leaked_at", UTCDateTime()))
        batch.create_unique_constraint("uq_clusters_renewal_hash", ["renewal_hash"])
        batch.create_index("ix_clusters_leaked_credential_hash", ["leaked_credential_hash"])


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_index("ix_clusters_leaked_credential_hash")
        batch.drop_constraint("uq_clusters_renewal_hash", type_="unique")
        batch.drop_column("credential_leaked_at")
        batch.drop_column("leaked_credential_hash")
        batch.drop_column("renewal_hash")
