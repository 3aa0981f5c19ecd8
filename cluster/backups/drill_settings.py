"""Drill settings: the `drill` object inside the cluster config's `backup` section (pure).

Guarantees: `checked` refuses a relative scratch or key path, a bad cron line or a bad node
name with one line; nothing here reads a file (the key file lives on the drill node).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cluster.backups.errors import BackupConfigError

DEFAULT_DRILL_TIMEOUT = 6 * 3600.0


class DrillSettings(BaseModel):
    """`managed backup drill configure`: when, where and with which key drills run.

    `key_file` is a path on the drill node(s), never the key itself: ZooKeeper is readable by
    every holder of the cluster credential and is itself backed up. Without a key file a drill
    proves every stored byte against the signed manifest but cannot decrypt (docs/backups.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule: str | None = None
    scratch: str | None = None
    node: str | None = None  # None: the leader runs the drill itself
    key_file: str | None = None
    timeout: float = Field(default=DEFAULT_DRILL_TIMEOUT, gt=0)

    @field_validator("scratch", "key_file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must be an absolute path")
        return value

    def checked(self) -> DrillSettings:
        from cluster.backups.cron import parse_schedule  # APScheduler: only when checking
        from cluster.names import check_name

        if self.schedule is not None:
            parse_schedule(self.schedule)
        if self.node is not None:
            try:
                check_name("drill node", self.node)
            except ValueError as exc:
                raise BackupConfigError(str(exc)) from exc
        return self
