"""Staff accounts and remote support: users own staff tokens; access requests, commands,
approval replay guard, pinned cluster keys, Mission Control's hash-chained audit log.

Tokens issued before this revision keep working: their user names become accounts that cannot
log in (no password hash, no TOTP secret) until an admin recreates them with `users add`.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Not an argon2 hash: verification always fails, so an account created for a legacy token
# cannot log in with any password.
_NO_PASSWORD = "!"


def upgrade() -> None:
    # Cluster message kinds now include support/command-result (22 characters).
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("kind", type_=sa.String(32), existing_nullable=False)
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=False),
        sa.Column("last_totp_step", sa.BigInteger),
        sa.Column("throttle", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute(
        sa.text(
            "INSERT INTO users (name, role, password_hash, totp_secret, created_at) "
            "SELECT user_name, MAX(role), :nopw, '', MIN(created_at) FROM staff_tokens "
            "GROUP BY user_name"
        ).bindparams(nopw=_NO_PASSWORD)
    )
    with op.batch_alter_table("staff_tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="api"))
        batch.add_column(sa.Column("hint", sa.String(16), nullable=False, server_default=""))
        batch.create_foreign_key("fk_staff_tokens_user_name", "users", ["user_name"], ["name"])
    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "support_clusters",
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), primary_key=True),
        sa.Column("public_key_pem", sa.Text),
        sa.Column("key_pinned_at", UTCDateTime()),
        sa.Column("policy", sa.JSON),
        sa.Column("policy_updated_at", UTCDateTime()),
    )
    op.create_table(
        "access_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), nullable=False),
        sa.Column("engineer", sa.String(128), nullable=False),
        sa.Column("engineer_role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("pending_until", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime()),
        sa.Column("sync_state", sa.String(16)),
        sa.Column("state_changed_by", sa.String(128)),
        sa.Column("state_reason", sa.Text),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("approval", sa.Text),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_access_requests_cluster_state", "access_requests", ["cluster_id", "state"])
    op.create_index("ix_access_requests_engineer", "access_requests", ["engineer"])
    op.create_table(
        "approval_ids",
        sa.Column("approval_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("forget_after", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_approval_ids_forget_after", "approval_ids", ["forget_after"])
    op.create_table(
        "support_commands",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("request_id", sa.String(36), sa.ForeignKey("access_requests.id"), nullable=False),
        sa.Column("cluster_id", sa.String(36), sa.ForeignKey("clusters.id"), nullable=False),
        sa.Column("engineer", sa.String(128), nullable=False),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("arguments", sa.JSON, nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16)),
        sa.Column("summary", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("received_at", UTCDateTime()),
    )
    op.create_index("ix_support_commands_request_id", "support_commands", ["request_id"])
    op.create_index(
        "ix_support_commands_cluster_status", "support_commands", ["cluster_id", "status"]
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_name", sa.String(128), nullable=False),
        sa.Column("actor_kind", sa.String(32), nullable=False),
        sa.Column("actor_via", sa.String(128)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    for column in ("at", "actor_name", "action", "cluster"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "audit_checkpoints",
        "audit_log",
        "support_commands",
        "approval_ids",
        "access_requests",
        "support_clusters",
        "settings",
    ):
        op.drop_table(table)
    with op.batch_alter_table("staff_tokens") as batch:
        batch.drop_constraint("fk_staff_tokens_user_name", type_="foreignkey")
        batch.drop_column("hint")
        batch.drop_column("kind")
    op.drop_table("users")
    with op.batch_alter_table("messages") as batch:
        batch.alter_column("kind", type_=sa.String(16), existing_nullable=False)
