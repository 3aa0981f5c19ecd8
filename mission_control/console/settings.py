"""Console settings: defaults < environment (``MISSION_CONTROL_CONSOLE_*``).

Guarantees: validated as a whole (an idle timeout longer than the session's maximum age, or a
sample retention shorter than the history shown, is refused), immutable once built.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    """How the console behaves; see docs/console.md."""

    model_config = SettingsConfigDict(
        env_prefix="MISSION_CONTROL_CONSOLE_", frozen=True, extra="forbid", allow_inf_nan=False
    )

    idle_timeout_s: float = Field(default=30 * 60, gt=0, le=30 * 86400)
    session_max_age_s: float = Field(default=12 * 3600, gt=0, le=30 * 86400)
    touch_interval_s: float = Field(default=60, ge=0, le=86400)
    staff_directory: str | None = Field(
        default=None, description="module:factory building the StaffDirectory used to log in."
    )
    history_days: int = Field(default=7, ge=1, le=90)
    sample_retention_days: int = Field(default=30, ge=1, le=3650)
    prune_interval_s: float = Field(default=3600, gt=0, le=7 * 86400)
    page_size: int = Field(default=50, ge=5, le=500)
    refresh_s: int = Field(default=5, ge=1, le=600)
    running_refresh_s: int = Field(default=60, ge=1, le=3600)
    audit_rows: int = Field(default=200, ge=10, le=10_000)

    @model_validator(mode="after")
    def _consistent(self) -> ConsoleSettings:
        if self.idle_timeout_s > self.session_max_age_s:
            raise ValueError("idle_timeout_s must not exceed session_max_age_s")
        if self.touch_interval_s >= self.idle_timeout_s:
            raise ValueError("touch_interval_s must be shorter than idle_timeout_s")
        if self.sample_retention_days < self.history_days:
            raise ValueError("sample_retention_days must be at least history_days")
        return self

    @property
    def history(self) -> timedelta:
        return timedelta(days=self.history_days)
