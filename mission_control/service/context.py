"""What every service function needs: the engine, an injectable clock, and the policies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from mission_control.secrets_key import SecretsKey
from mission_control.service.rules.policy import AlertPolicy, SizingPolicy
from mission_control.service.rules.sampling import WindowSampler
from mission_control.service.support.settings import SupportSettings

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServiceContext:
    engine: AsyncEngine
    clock: Clock = utc_now
    sizing: SizingPolicy = field(default_factory=SizingPolicy)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    health_interval: timedelta = timedelta(minutes=2)
    dedupe_retention: timedelta = timedelta(days=30)
    enrollment_token_ttl: timedelta = timedelta(days=7)
    support: SupportSettings = field(default_factory=SupportSettings)
    # Refused unknown staff tokens: one audit entry per remote address and minute, with a count.
    token_refusals: WindowSampler = field(default_factory=WindowSampler, compare=False)
    # Throttled login attempts: one audit entry per source address and minute, with a count.
    login_refusals: WindowSampler = field(default_factory=WindowSampler, compare=False)
    # The key sealing TOTP secrets (resolved at first use: `mission_control.secrets_key`).
    secrets: SecretsKey = field(default_factory=SecretsKey)
