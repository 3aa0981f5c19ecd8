"""Rendering pages: the Jinja2 environment (filters for units and gauges) and `page()`.

Templates live in `mission_control/templates/console`; autoescaping is on for every template,
so values are escaped unless they are `Markup` built by `plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from contract.messages import AlertKind
from mission_control.console import plots, units
from mission_control.console.abilities import Abilities
from mission_control.console.keys import PREFIX, current_session

# By file location, not by package lookup: under pytest, tests/mission_control (a directory
# without __init__) can shadow the package name as a namespace package.
TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "console"
# The console's name of every alert kind, in the order its filter lists them (a test holds this
# table to `AlertKind`, so a new kind cannot reach the console unnamed).
ALERT_LABELS: dict[AlertKind, str] = {
    AlertKind.CLUSTER_SILENT: "Cluster silent",
    AlertKind.CLUSTER_UNDERSIZED: "Cluster undersized",
    AlertKind.BACKUP_FAILED: "Backup failed",
    AlertKind.DRILL_FAILED: "Restore drill failed",
    AlertKind.SETTING_CHANGED: "Setting changed",
    AlertKind.DATACENTER_LOST: "Datacenter lost",
    AlertKind.DATACENTER_BACK: "Datacenter back",
    AlertKind.LICENSE_EXPIRED: "License expired",
    AlertKind.LICENSE_EXPIRING: "License expiring",
    AlertKind.LICENSE_OVERAGE: "License overage",
    AlertKind.RELEASE_REFUSED: "Release refused",
    AlertKind.ROLLOUT_FAILED: "Rollout failed",
    AlertKind.CREDENTIAL_LEAKED: "Credential leaked",
}


def setup_templates(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=units.size,
        percent=units.percent,
        number=units.number,
        ago=units.ago,
        timestamp=units.timestamp,
        duration=units.duration,
        seconds=lambda value: units.duration(timedelta(seconds=float(value))),
        alert_label=lambda kind: ALERT_LABELS.get(kind, str(kind)),
    )
    env.globals.update(
        gauge=plots.usage_bar,
        sparkline=plots.sparkline,
        prefix=PREFIX,
        alert_kinds=list(ALERT_LABELS),
    )


def page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    now: datetime | None = None,
) -> web.Response:
    """Render `template` for the logged-in user (navigation, CSRF token, role flags)."""
    session = current_session(request)
    full = {
        "user": session.user,
        "role": session.role,
        "csrf_token": session.csrf_token,
        "can": Abilities.of(session.role),
        "now": now,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    return response
