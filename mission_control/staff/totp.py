"""Time-based one-time passwords (RFC 6238 via pyotp), never accepted twice.

`verify_totp` is pure: it takes the secret, the code typed, the last accepted time step for this
user and `now`, and returns the step it accepts or a refusal. The caller stores the accepted step
(in the same transaction as the login) and passes it back next time; any code whose step is <= the
stored one is refused, so a code seen over a shoulder or replayed from a proxy log is useless,
even inside its 30-second window. One step of clock drift either way is tolerated.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1


@dataclass(frozen=True)
class TotpResult:
    """`step` is set when the code is accepted; otherwise `reason` says why not."""

    step: int | None
    reason: str

    @property
    def accepted(self) -> bool:
        return self.step is not None


def new_totp_secret() -> str:
    """A fresh random base32 secret (160 bits) to enrol in an authenticator app."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, username: str, issuer: str = "Mission Control") -> str:
    """The otpauth:// URI to show as a QR code at enrolment."""
    uri: str = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    return uri


def time_step(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    code: str = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)
    return code


def verify_totp(secret: str, code: str, last_step: int | None, now: datetime) -> TotpResult:
    """Accept `code` if it matches a step within the drift window that is newer than `last_step`."""
    cleaned = code.replace(" ", "")
    if len(cleaned) != DIGITS or not cleaned.isdigit():
        return TotpResult(None, f"a code has {DIGITS} digits")
    current = time_step(now)
    replayed = False
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        try:
            expected = code_at_step(secret, step)
        except (TypeError, ValueError):
            return TotpResult(None, "the stored TOTP secret is unreadable")
        if hmac.compare_digest(expected, cleaned):
            if last_step is not None and step <= last_step:
                replayed = True
                continue
            return TotpResult(step, "code accepted")
    return TotpResult(None, "code already used" if replayed else "wrong or expired code")
