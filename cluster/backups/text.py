"""How runs, sizes and times read in the `managed backup` text output (pure, no imports of
the backup library, so the CLI starts fast)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def when_text(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def size_text(n: Any) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def run_line(s: dict[str, Any]) -> str:
    took = f"{s['duration']:.1f}s" if isinstance(s.get("duration"), float) else "-"
    line = f"backup {s['id']} {s['status']}: {size_text(s['bytes'])} in {took}"
    return line + (f": {s['reason']}" if s.get("reason") else "")


def missing_text(missing: Any) -> str:
    nodes = ", ".join(missing or ())
    return f"warning: no data from {nodes} (down when the backup ran)" if nodes else ""


def list_text(
    rows: list[dict[str, Any]], cluster: str, signer: str | None, current_key: str | None = None
) -> str:
    if not rows:
        return f"cluster {cluster} has no backup runs yet: `managed backup run --wait`"
    lines = [f"manifests signed by {signer or '- (no signing key yet)'}"]
    lines.append(f"backup key now   {(current_key or '- (none configured)')[:16]}")
    lines.append(
        f"{'ID':<26} {'STATUS':<8} {'STARTED':<21} {'DURATION':>9} {'SIZE':>10}  "
        f"{'KEY':<16}  TRIGGER"
    )
    for r in rows:
        took = f"{r['duration']:.1f}s" if r["duration"] is not None else "-"
        key = (r.get("key_id") or "-")[:16]
        line = (
            f"{r['id']:<26} {r['status']:<8} {when_text(r['started']):<21} {took:>9} "
            f"{size_text(r['bytes']):>10}  {key:<16}  {r['trigger']}"
        )
        if current_key and r.get("key_id") and r["key_id"] != current_key:
            line += "  (written for another key than the current one)"
        if r.get("missing_nodes"):
            line += f"  (no data from {', '.join(r['missing_nodes'])})"
        if r.get("proven"):
            line += f"  proven by drill {when_text(r['proven']['at'])}"
        lines.append(line)
    return "\n".join(lines)


def seconds_text(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}min"
    return f"{value / 3600:.1f}h"


def drill_list_text(rows: list[dict[str, Any]], cluster: str, trend: str) -> str:
    if not rows:
        return f"cluster {cluster} has no restore drills yet: `managed backup drill run --wait`"
    lines = [
        f"{'DRILL':<37} {'STATUS':<8} {'STARTED':<21} {'BACKUP':<26} {'RTO':>8} {'RPO':>8}  NODE"
    ]
    for r in rows:
        line = (
            f"{r['id']:<37} {r['status']:<8} {when_text(r['started']):<21} "
            f"{r['backup_id'] or '-':<26} {seconds_text(r['rto_seconds']):>8} "
            f"{seconds_text(r['rpo_seconds']):>8}  {r['node'] or '-'}"
        )
        if r["status"] == "ok" and not r["decrypted"]:
            line += "  (digests only: no drill key)"
        if r.get("reason"):
            line += f"  {r['reason']}"
        lines.append(line)
    lines.append(f"RTO trend: {trend}")
    return "\n".join(lines)


def show_text(doc: dict[str, Any]) -> str:
    lines = [
        run_line(doc),
        f"started   {when_text(doc['started'])} ({doc['trigger']}, epoch {doc['epoch']})",
        f"finished  {when_text(doc['finished'])}",
        f"targets   {', '.join(doc['targets']) or '-'}",
        f"signer    {doc.get('signer') or '-'}",
    ]
    if doc["retention"]:
        lines.append(f"retention {doc['retention']}")
    for p in doc["parts"]:
        state = p["error"] or f"{size_text(p['bytes'])}, {p['frames']} frame(s)"
        lines.append(f"  part {p['part']:<14} {state}")
    if doc.get("missing_nodes"):
        lines.append(missing_text(doc["missing_nodes"]))
    return "\n".join(lines)


def signer_line(signer: str) -> str:
    return f"manifests are signed by {signer}: record it, `restore --signer` needs it"


def restore_text(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What `restore` prints: result lines (stdout) and warnings (stderr)."""
    cluster = report["cluster"]
    dirs = ", ".join(f"{n} -> {d}" for n, d in report["directories"])
    lines = [
        f"restored backup {report['backup_id']} (signed by {report['signer']}) into cluster "
        f"{cluster}: {report['znodes']} znodes; data directories {dirs or 'none'}",
        f"scheduled backups are paused (the configuration still points at the original's "
        f"target): check `managed --cluster {cluster} backup configure`, then "
        f"`managed --cluster {cluster} backup resume`",
    ]
    if report["enrolled"]:
        lines.append(
            "the Mission Control enrollment came back too: this cluster now speaks for the "
            f"original (epochs from {report['epoch'] + 1}); to run both, re-enroll one of them"
        )
    warnings = []
    if report["missing_nodes"]:
        warnings.append(
            missing_text(report["missing_nodes"]) + ": their roster entries are restored, "
            "their data directories are not; start them empty or remove them "
            "(`managed node leave NODE --force`)"
        )
    return lines, warnings
