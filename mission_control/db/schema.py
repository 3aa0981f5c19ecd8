"""The database schema (SQLAlchemy Core), identical on SQLite and PostgreSQL.

Guarantees carried by constraints, so they hold under concurrency and across server processes:
- one cluster per name; credentials and tokens are stored only as SHA-256 hashes, unique;
- one stored reply per (cluster, message_id): the dedupe key;
- one consumption row per (cluster, environment, period_start): resends never double-count;
- at most one open alert per (cluster, kind) (a partial unique index on ``cleared_at IS NULL``);
- one staff user per name, owning its tokens (foreign key); a signed approval id is honoured
  once (primary key of `approval_ids`); one audit entry per sequence number.
Timestamps are UTC; `UTCDateTime` returns aware datetimes on both back ends.

Migrations in `mission_control/db/migrations/versions` must produce exactly this schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite has no time zones, PostgreSQL does."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData()

clusters = Table(
    "clusters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("geography", String(8), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("enrollment_token_hash", String(64), unique=True),
    Column("enrollment_expires_at", UTCDateTime()),
    Column("credential_hash", String(64), unique=True),
    Column("enrolled_at", UTCDateTime()),
    # The renewal secret (`mcr_`) buys one new credential after a leak; the leaked credential's
    # digest is kept so its next use is told `credential_revoked` (migration 0008).
    Column("renewal_hash", String(64), unique=True),
    Column("leaked_credential_hash", String(64), index=True),
    Column("credential_leaked_at", UTCDateTime()),
    Column("last_epoch", BigInteger, nullable=False, server_default="0"),
    Column("last_health_at", UTCDateTime()),
    Column("health_status", String(16)),
    Column("last_health", JSON),
    Column("last_heartbeat_at", UTCDateTime()),
    Column("host_units_in_use", Float),
    # The health interval the cluster reports (NULL: the server's `health_interval_s`).
    Column("health_interval_s", Float),
    # The last report's sites and quorum rule (NULL: no data centers declared).
    Column("last_datacenters", JSON),
    # When the cluster last reported a release refused or rolled back (migration 0012).
    Column("release_refused_at", UTCDateTime()),
)

licenses = Table(
    "licenses",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("host_units", Float, nullable=False),
    Column("expires", Date, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("message_id", String(36), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("reply", Text, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Index("ix_messages_received_at", "received_at"),
)

consumption = Table(
    "consumption",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("environment", String(128), primary_key=True),
    Column("period_start", UTCDateTime(), primary_key=True),
    Column("host_units", Float, nullable=False),
    Column("host_unit_hours", Float, nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster_id", String(36), ForeignKey("clusters.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("detail", Text, nullable=False),
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("cleared_at", UTCDateTime()),
)
ALERT_OPEN_WHERE = alerts.c.cleared_at.is_(None)
Index(
    "uq_alerts_open",
    alerts.c.cluster_id,
    alerts.c.kind,
    unique=True,
    sqlite_where=ALERT_OPEN_WHERE,
    postgresql_where=ALERT_OPEN_WHERE,
)
Index("ix_alerts_raised_at", alerts.c.raised_at)

# Vendor staff: argon2id password hash, TOTP secret (sealed with the secrets key:
# `mission_control.staff.secretbox`), the last accepted TOTP time step (a code is never accepted
# twice: logins advance it with a conditional UPDATE).
users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("totp_secret", Text, nullable=False),
    Column("last_totp_step", BigInteger),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
)

# Failed staff logins per (source address, user name), and per source (`username` empty):
# `mission_control.staff.throttle`. Keyed by what a caller sends, never by the account, so an
# unknown name is counted as a known one. Rows quiet for longer than the policy forgives are
# pruned by the sweep.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("username", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("blocked_until", UTCDateTime()),
    Column("last_failure", UTCDateTime(), nullable=False),
)
Index("ix_login_throttle_last_failure", login_throttle.c.last_failure)

# Bearer tokens of vendor staff, owned by a user; a token acts with its owner's current role.
# `kind` is "api" (tokens create) or "session" (login, expires); `role` records the owner's role
# when the token was issued.
staff_tokens = Table(
    "staff_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_name", String(128), ForeignKey("users.name"), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("kind", String(16), nullable=False, server_default="api"),
    Column("hint", String(16), nullable=False, server_default=""),
)

# Mission Control's own settings, e.g. the Ed25519 key that signs audit checkpoints.
settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Per cluster: the pinned Ed25519 public key that signs its approvals, and its support policy.
support_clusters = Table(
    "support_clusters",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("public_key_pem", Text),
    Column("key_pinned_at", UTCDateTime()),
    Column("policy", JSON),
    Column("policy_updated_at", UTCDateTime()),
)

# Access requests. `record` is the whole `contract.support.requests.AccessRequest` (JSON); the
# other columns mirror what queries need. `sync_state` is a state Mission Control set (the
# engineer ended the grant) that the cluster has not yet confirmed: listed in heartbeat replies.
access_requests = Table(
    "access_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cluster_id", String(36), ForeignKey("clusters.id"), nullable=False),
    Column("engineer", String(128), nullable=False),
    Column("engineer_role", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("pending_until", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime()),
    Column("sync_state", String(16)),
    Column("state_changed_by", String(128)),
    Column("state_reason", Text),
    Column("record", Text, nullable=False),
    Column("approval", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_access_requests_cluster_state", "cluster_id", "state"),
    Index("ix_access_requests_engineer", "engineer"),
)

# Approval ids already honoured (the replay guard); forgotten once their window has ended.
approval_ids = Table(
    "approval_ids",
    metadata,
    Column("approval_id", String(64), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("forget_after", UTCDateTime(), nullable=False, index=True),
)

# Commands an engineer queued for a cluster; `status` stays NULL until the cluster answers.
support_commands = Table(
    "support_commands",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(36), ForeignKey("access_requests.id"), nullable=False, index=True),
    Column("cluster_id", String(36), ForeignKey("clusters.id"), nullable=False),
    Column("engineer", String(128), nullable=False),
    Column("command", String(32), nullable=False),
    Column("arguments", JSON, nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("status", String(16)),
    Column("summary", Text),
    Column("output", Text),
    Column("answered_at", UTCDateTime()),
    Column("received_at", UTCDateTime()),
    Index("ix_support_commands_cluster_status", "cluster_id", "status"),
)

# Mission Control's hash-chained audit log (`contract.audit.chain`): every field of an entry is a
# column, so editing any of them breaks its hash. Checkpoints are signed with the `settings` key.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("actor_name", String(128), nullable=False, index=True),
    Column("actor_kind", String(32), nullable=False),
    Column("actor_via", String(128)),
    Column("action", String(64), nullable=False, index=True),
    Column("cluster", String(64), nullable=False, index=True),
    Column("subject", String(128), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Each cluster's signed audit checkpoints as the cluster sent them (`at` and `signature` as text,
# exactly as signed), so `managed audit verify` can find local checkpoints that were deleted or
# rewritten. One row per (cluster, seq); a different checkpoint for a known seq is refused.
cluster_checkpoints = Table(
    "cluster_checkpoints",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
    Column("at", String(64), nullable=False),
    Column("signature", String(128), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)

# The console's data. `console_sessions`: one row per logged-in browser; only the SHA-256 of the
# session cookie (256 random bits) is stored, with the user, the role at login, when the session
# was created and last seen, and its CSRF token.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Index("ix_console_sessions_last_seen_at", "last_seen_at"),
)

# One cluster-wide aggregate per accepted health check (CPU % weighted by cores, memory and disk
# used/total over the nodes that are up), keyed by (cluster, time), for the history plots.
# Written in the health check's own transaction, so a deduplicated resend leaves no sample.
health_samples = Table(
    "health_samples",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("at", UTCDateTime(), primary_key=True),
    Column("nodes_up", Integer, nullable=False),
    Column("cpu_percent", Float, nullable=False),
    Column("memory_used_bytes", BigInteger, nullable=False),
    Column("memory_total_bytes", BigInteger, nullable=False),
    Column("disk_used_bytes", BigInteger, nullable=False),
    Column("disk_total_bytes", BigInteger, nullable=False),
    Index("ix_health_samples_at", "at"),
)

# Per cluster, the last `backup_succeeded` and the last `backup_failed` event (one row each,
# replaced by the next): when Mission Control received it, the backup id it names and its
# detail. Written by the event ingest in the event's own transaction, so a resend changes nothing.
backup_outcomes = Table(
    "backup_outcomes",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("outcome", String(16), primary_key=True),  # "succeeded" or "failed"
    Column("at", UTCDateTime(), nullable=False),
    Column("backup_id", String(64)),
    Column("detail", Text, nullable=False),
)

# Every restore drill a cluster reported (`drill_succeeded` / `drill_failed` events, with their
# `DrillReport`): the console shows the last one, its RTO and RPO, and the trend. Written by the
# event ingest in the event's own transaction; keyed by the drill id, so a resend adds nothing.
restore_drills = Table(
    "restore_drills",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("drill_id", String(64), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("backup_id", String(64)),
    Column("rto_seconds", Float),
    Column("rpo_seconds", Float),
    Column("bytes", BigInteger, nullable=False),
    Column("files", Integer, nullable=False),
    Column("decrypted", Boolean, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_restore_drills_cluster_at", "cluster_id", "at"),
)

# The release Mission Control offers each cluster (`mission-control releases offer`, later a
# fleet rollout's waves): one row per cluster, replaced by the next offer (migration 0011).
release_offers = Table(
    "release_offers",
    metadata,
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("offered_at", UTCDateTime(), nullable=False),
    Column("offered_by", String(256), nullable=False),
)

# Fleet rollouts (`mission-control rollouts`, migration 0012): the rollout (its wave sizes,
# state, current wave and the reason of its last step) and each cluster it covers, in wave order
# (`position`), with when it was offered the release, finished healthy or failed.
rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),
    Column("selector", String(512), nullable=False),
    Column("waves", String(256), nullable=False),
    Column("sizes", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("deadline_s", Float, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

rollout_clusters = Table(
    "rollout_clusters",
    metadata,
    Column("rollout_id", Integer, ForeignKey("rollouts.id"), primary_key=True),
    Column("cluster_id", String(36), ForeignKey("clusters.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("offered_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("failed_at", UTCDateTime()),
    Column("failure", Text),
    Index("ix_rollout_clusters_cluster", "cluster_id"),
)

# A covering index for the fleet page, so its ordering by name, search, filters and status
# tallies read a narrow index instead of the wide cluster rows (each carries its last report).
Index(
    "ix_clusters_console_fleet",
    clusters.c.name,
    clusters.c.id,
    clusters.c.geography,
    clusters.c.health_status,
    clusters.c.enrolled_at,
)
# Finds the few silent clusters among thousands of open alerts without scanning them.
Index(
    "ix_alerts_console_open_kind",
    alerts.c.kind,
    alerts.c.cluster_id,
    sqlite_where=ALERT_OPEN_WHERE,
    postgresql_where=ALERT_OPEN_WHERE,
)
