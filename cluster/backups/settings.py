"""Backup settings: the `backup` section of the cluster config, validated on every write.

Guarantees:
- `BackupSettings.checked(geography)` refuses a malformed URL, a duplicate target, a target or
  mirror whose declared region lies outside the geography, a bad cron expression, a bad
  bandwidth limit or a public key that is not X25519/RSA-3072+, with one line naming the problem.
- `plan_run` turns stored settings into the `RunPlan` a run carries (so the leader and every node
  write with the same settings even if the config changes mid-run), or says what is missing.
Pure: no I/O here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backup.errors import BackupError
from cluster.backups.drill_settings import DrillSettings
from cluster.backups.errors import BackupConfigError
from cluster.backups.queued import missing_setting
from contract.validation import first_error

if TYPE_CHECKING:
    from backup.residency import ResidencyPolicy
    from backup.retention import RetentionPolicy

SECTION = "backup"
DEFAULT_PART_TIMEOUT = 6 * 3600.0


def public_key_id(pem: str) -> str | None:
    """The id of a PEM public key (`backup.keys.key_id`); None when it does not parse."""
    from backup.errors import KeyFileError  # deferred: start-up time
    from backup.keys import key_id, load_public_key

    try:
        return key_id(load_public_key(pem.encode()))
    except KeyFileError:
        return None


class BackupSettings(BaseModel):
    """What the operator configured (`managed backup configure`, `keygen`, `pause`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str | None = None
    mirrors: tuple[str, ...] = ()
    schedule: str | None = None  # cron: 5 fields, or 6 with seconds first
    keep_last: int = Field(default=0, ge=0)
    keep_daily: int = Field(default=0, ge=0)
    keep_weekly: int = Field(default=0, ge=0)
    keep_monthly: int = Field(default=0, ge=0)
    bandwidth_limit: str | None = None  # e.g. "100MiB/s", per node
    public_key: str | None = None  # the customer's public key, PEM
    key_id: str | None = None
    signing_public_key: str | None = None  # the cluster's Ed25519 key, raw, base64
    paused: bool = False
    part_timeout: float = Field(default=DEFAULT_PART_TIMEOUT, gt=0)
    drill: DrillSettings | None = None  # restore drills (`managed backup drill configure`)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BackupSettings:
        section = config.get(SECTION)
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise BackupConfigError("the cluster config's backup section is not an object")
        try:
            return cls.model_validate(section)
        except ValidationError as exc:
            where, message = first_error(exc, "backup")
            raise BackupConfigError(f"backup setting {where}: {message}") from exc

    @property
    def retention(self) -> RetentionPolicy:
        from backup.retention import RetentionPolicy

        return RetentionPolicy(
            keep_last=self.keep_last,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
        )

    @property
    def installed_key_id(self) -> str | None:
        """The id of the public key installed now, read from the key itself (a `key_id`
        written beside it may be stale or missing); None without a readable key."""
        return public_key_id(self.public_key) if self.public_key is not None else None

    def checked(self, geography: str | None) -> BackupSettings:
        """Self, after every configure-time check; BackupConfigError names the first problem."""
        # The backup library loads only when settings are checked, not when read, and only the
        # modules the checks use (not the writers, readers and storage backends).
        from backup.destinations import check_configuration
        from backup.keys import key_id, load_public_key
        from backup.residency import ResidencyPolicy
        from backup.throttle import parse_rate

        try:
            if geography:
                ResidencyPolicy(geography)
            if self.target is not None:
                if not geography:
                    raise BackupConfigError(
                        "the cluster has no geography: pass --geography (e.g. EU)"
                    )
                check_configuration(self.target, self.mirrors, ResidencyPolicy(geography))
            elif self.mirrors:
                raise BackupConfigError("mirrors need a primary target: pass --target")
            if self.schedule is not None:
                from cluster.backups.cron import parse_schedule  # APScheduler, asyncio

                parse_schedule(self.schedule)
            if self.bandwidth_limit is not None:
                parse_rate(self.bandwidth_limit)
            if self.public_key is not None:
                public = load_public_key(self.public_key.encode())
                if self.key_id is not None and self.key_id != key_id(public):
                    raise BackupConfigError("backup key_id does not match the public key")
            if self.drill is not None:
                self.drill.checked()
        except BackupError as exc:
            raise BackupConfigError(str(exc)) from exc
        return self

    def to_config(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class RunPlan(BaseModel):
    """Everything a run needs, fixed when it starts (no secrets: only the public key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    geography: str
    target: str
    mirrors: tuple[str, ...] = ()
    public_key: str
    bandwidth_limit: int | None = None  # bytes per second, per node
    part_timeout: float = DEFAULT_PART_TIMEOUT

    @property
    def policy(self) -> ResidencyPolicy:
        from backup.residency import ResidencyPolicy

        return ResidencyPolicy(self.geography)

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.target, *self.mirrors)

    @property
    def key_id(self) -> str | None:
        """The id of the public key the run's data keys are wrapped for (None: unreadable)."""
        return public_key_id(self.public_key)


def plan_run(config: dict[str, Any]) -> RunPlan:
    """The plan for a run now, or BackupConfigError saying what the operator must do first."""
    settings = BackupSettings.from_config(config)
    geography = config.get("geography")
    missing = missing_setting(config)
    if missing is not None:
        raise BackupConfigError(missing)
    assert settings.target is not None and settings.public_key is not None
    settings.checked(geography if isinstance(geography, str) else None)
    assert isinstance(geography, str)
    from backup.throttle import parse_rate

    return RunPlan(
        geography=geography,
        target=settings.target,
        mirrors=settings.mirrors,
        public_key=settings.public_key,
        bandwidth_limit=parse_rate(settings.bandwidth_limit) if settings.bandwidth_limit else None,
        part_timeout=settings.part_timeout,
    )
