"""Security: login throttling per (source, name) instead of per account; room for sealed TOTP
secrets.

`users.throttle` (a lockout any caller could trigger) gives way to `login_throttle`;
`users.totp_secret` becomes TEXT so it can hold the secret sealed with the secrets key (the
server seals plaintext secrets at start: `service.accounts.users.seal_totp_secrets`).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mission_control.db.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(128), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("blocked_until", UTCDateTime()),
        sa.Column("last_failure", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_login_throttle_last_failure", "login_throttle", ["last_failure"])
    if op.get_bind().dialect.name == "sqlite":
        # Not a batch (copy, drop, rename) of `users`: other tables' foreign keys refer to it,
        # and SQLite refuses to drop it under them inside a transaction. Its own ALTER TABLE
        # drops, adds and renames columns in place (SQLite >= 3.35).
        for statement in (
            "ALTER TABLE users DROP COLUMN throttle",
            "ALTER TABLE users ADD COLUMN totp_sealed TEXT NOT NULL DEFAULT ''",
            "UPDATE users SET totp_sealed = totp_secret",
            "ALTER TABLE users DROP COLUMN totp_secret",
            "ALTER TABLE users RENAME COLUMN totp_sealed TO totp_secret",
        ):
            op.execute(statement)
        return
    op.drop_column("users", "throttle")
    op.alter_column(
        "users", "totp_secret", type_=sa.Text, existing_type=sa.String(64), existing_nullable=False
    )


def downgrade() -> None:
    # totp_secret stays TEXT: sealed secrets would not fit the old VARCHAR(64).
    op.add_column("users", sa.Column("throttle", sa.Text, nullable=False, server_default="{}"))
    op.drop_index("ix_login_throttle_last_failure", "login_throttle")
    op.drop_table("login_throttle")
