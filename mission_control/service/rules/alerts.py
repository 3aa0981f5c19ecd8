"""Alert rules: pure functions from an observation to the alerts it raises or clears.

Each rule returns an `AlertChanges` mapping: kind -> detail (the alert should be open, with this
detail) or None (the alert should be cleared). Kinds a rule does not mention are left alone, so
rules for different observations (health, license, silence, events) never undo each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from contract.messages import GUARDED_SETTING_TITLES, AlertKind, GuardedSetting, LicenseState
from mission_control.service.rules.durations import duration
from mission_control.service.rules.licensing import LicenseEvaluation
from mission_control.service.rules.sizing import HealthAssessment

AlertChanges = Mapping[AlertKind, str | None]
Severity = Literal["warning", "critical"]

SEVERITY: Mapping[AlertKind, Severity] = {
    AlertKind.CLUSTER_UNDERSIZED: "warning",
    AlertKind.CLUSTER_SILENT: "critical",
    AlertKind.LICENSE_EXPIRING: "warning",
    AlertKind.LICENSE_EXPIRED: "critical",
    AlertKind.LICENSE_OVERAGE: "warning",
    AlertKind.BACKUP_FAILED: "critical",
    AlertKind.DRILL_FAILED: "critical",
    AlertKind.SETTING_CHANGED: "warning",
    AlertKind.DATACENTER_LOST: "critical",
    AlertKind.DATACENTER_BACK: "warning",
    AlertKind.RELEASE_REFUSED: "critical",  # someone may be feeding the cluster a bad release
    AlertKind.CREDENTIAL_LEAKED: "critical",
    AlertKind.ROLLOUT_FAILED: "critical",  # the rollout waits for a person
}


LICENSE_KINDS = (
    AlertKind.LICENSE_EXPIRING,
    AlertKind.LICENSE_EXPIRED,
    AlertKind.LICENSE_OVERAGE,
)


def health_alerts(assessment: HealthAssessment) -> AlertChanges:
    """A health check clears `cluster_silent` and raises/clears `cluster_undersized`."""
    undersized = "; ".join(assessment.undersized) or None
    return {AlertKind.CLUSTER_UNDERSIZED: undersized, AlertKind.CLUSTER_SILENT: None}


def license_alerts(evaluation: LicenseEvaluation) -> AlertChanges:
    """One alert per license condition that holds; the other license alerts are cleared."""
    lic = evaluation.license
    changes: dict[AlertKind, str | None] = dict.fromkeys(LICENSE_KINDS)
    if LicenseState.EXPIRED in evaluation.conditions:
        changes[AlertKind.LICENSE_EXPIRED] = (
            "no license is set" if lic is None else f"license expired after {lic.expires}"
        )
    if lic is not None and LicenseState.EXPIRING in evaluation.conditions:
        changes[AlertKind.LICENSE_EXPIRING] = (
            f"license expires after {lic.expires} ({evaluation.days_left} days left)"
        )
    if lic is not None and LicenseState.OVERAGE in evaluation.conditions:
        changes[AlertKind.LICENSE_OVERAGE] = (
            f"{evaluation.host_units_in_use:g} host units in use, {lic.host_units:g} licensed"
        )
    return changes


def silence_alert(
    last_health_at: datetime, now: datetime, interval: timedelta, intervals: int
) -> AlertChanges:
    """`cluster_silent` once no health check arrived for `intervals` health intervals."""
    silent_for = now - last_health_at
    if silent_for > interval * intervals:
        return {
            AlertKind.CLUSTER_SILENT: f"no health check for {duration(silent_for)} "
            f"(expected every {interval.total_seconds():g} s)"
        }
    return {AlertKind.CLUSTER_SILENT: None}


def event_alerts(kind: str, detail: str, setting: GuardedSetting | None = None) -> AlertChanges:
    """`backup_failed` raises the alert of that name; `backup_succeeded` clears it; so do
    `drill_failed` and `drill_succeeded` for `drill_failed` (a backup that cannot be restored);
    `setting_changed` raises (or updates, when one is open) the cluster's `setting_changed`
    alert with this change: nothing clears it but an operator (`acknowledge`); so does
    `release_refused` with its own alert."""
    if kind == "setting_changed":
        label = GUARDED_SETTING_TITLES[setting] if setting else "a guarded setting changed"
        return {AlertKind.SETTING_CHANGED: f"{label}: {detail}" if detail else label}
    if kind == "backup_failed":
        return {AlertKind.BACKUP_FAILED: detail or "a backup failed"}
    if kind == "drill_failed":
        return {AlertKind.DRILL_FAILED: detail or "a restore drill failed"}
    if kind == "drill_succeeded":
        return {AlertKind.DRILL_FAILED: None}
    if kind == "release_refused":
        return {AlertKind.RELEASE_REFUSED: detail or "a release was refused"}
    return {AlertKind.BACKUP_FAILED: None}
