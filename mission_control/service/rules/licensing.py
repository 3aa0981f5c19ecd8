"""License evaluation: pure function of a license, the host units in use and today's date.

States, most severe first: ``expired`` (today is after the last valid day, or no license is set),
``overage`` (host units in use exceed the licensed host units), ``expiring`` (fewer than
``expiring_days`` days left, the last valid day included), ``valid``. The reply carries the most
severe state; `conditions` lists every one that holds, so alerts can be raised for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from contract.messages import LicenseState

_SEVERITY = (LicenseState.EXPIRED, LicenseState.OVERAGE, LicenseState.EXPIRING)


@dataclass(frozen=True)
class License:
    host_units: float
    expires: date  # last valid day, UTC


@dataclass(frozen=True)
class LicenseEvaluation:
    state: LicenseState
    conditions: frozenset[LicenseState]
    license: License | None
    host_units_in_use: float | None
    days_left: int | None


def evaluate_license(
    license: License | None,
    host_units_in_use: float | None,
    today: date,
    expiring_days: int,
) -> LicenseEvaluation:
    """Evaluate `license` on `today`; `host_units_in_use` None means not reported yet."""
    if license is None:
        return LicenseEvaluation(
            LicenseState.EXPIRED, frozenset({LicenseState.EXPIRED}), None, host_units_in_use, None
        )
    days_left = (license.expires - today).days + 1
    conditions: set[LicenseState] = set()
    if days_left <= 0:
        conditions.add(LicenseState.EXPIRED)
    elif days_left <= expiring_days:
        conditions.add(LicenseState.EXPIRING)
    if host_units_in_use is not None and host_units_in_use > license.host_units + 1e-9:
        conditions.add(LicenseState.OVERAGE)
    state = next((s for s in _SEVERITY if s in conditions), LicenseState.VALID)
    return LicenseEvaluation(
        state, frozenset(conditions), license, host_units_in_use, max(days_left, 0)
    )
