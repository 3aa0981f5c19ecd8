"""The cluster page's license form (operators and admins): set host units and the last day.

Guarantees: support engineers are refused (403) before the form is read; a bad field is a 400
naming it; otherwise one call to the licensing service (`admin.set_license`, which replaces the
license, re-evaluates the license alerts and writes the `license.set` audit entry naming the
person with the old and new values, in one transaction), then back to the cluster page.
The guard has already refused a POST without the session's CSRF token.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from mission_control.app_keys import CONTEXT
from mission_control.console import forms
from mission_control.console.abilities import Abilities
from mission_control.console.keys import PREFIX, current_session
from mission_control.service.fleet.admin import set_license


async def license_submit(request: web.Request) -> web.StreamResponse:
    if not Abilities.of(current_session(request).role).edit_license:
        raise web.HTTPForbidden(text="only operators and admins can change a license")
    body = forms.license_form(await request.post())
    ctx = request.config_dict[CONTEXT]
    cluster = request.match_info["cluster"]
    by = current_session(request).identity.actor
    await set_license(ctx, cluster, body.host_units, body.expires, by=by)
    raise web.HTTPSeeOther(f"{PREFIX}/clusters/{quote(cluster, safe='')}?saved=license#license")
