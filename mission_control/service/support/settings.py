"""Tunables of staff accounts and remote support at Mission Control (part of `ServiceContext`).

- `pending_ttl`: a request nobody decided on expires at Mission Control after this long (the
  cluster applies its own `support.pending_ttl` too); default 4 days.
- `session_ttl`: how long a token obtained by `POST /api/v1/login` is valid; default 12 hours.
- `throttle`: the login throttle (`mission_control.staff.throttle`).
- `hasher`: argon2id parameters for staff passwords (tests use cheaper ones).
- `checkpoints`: when the audit log gets a new signed checkpoint.
- `approvers`: the operator identity providers trusted per cluster
  (`mission_control.service.support.approvers`); none by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from argon2 import PasswordHasher

from contract.audit.chain import CheckpointSchedule
from contract.support.policy import DEFAULT_PENDING_TTL
from mission_control.service.support.approvers import TrustedApprovers
from mission_control.staff.passwords import DEFAULT_HASHER
from mission_control.staff.throttle import ThrottlePolicy


@dataclass(frozen=True)
class SupportSettings:
    pending_ttl: timedelta = DEFAULT_PENDING_TTL
    session_ttl: timedelta = timedelta(hours=12)
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    hasher: PasswordHasher = DEFAULT_HASHER
    checkpoints: CheckpointSchedule = field(default_factory=CheckpointSchedule)
    approvers: TrustedApprovers = field(default_factory=TrustedApprovers)

    def __post_init__(self) -> None:
        if self.pending_ttl <= timedelta(0) or self.session_ttl <= timedelta(0):
            raise ValueError("pending_ttl and session_ttl must be longer than zero")
