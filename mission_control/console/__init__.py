"""The Mission Control web console: server-rendered pages for support engineers and operators.

Mounted under ``/console/`` by `mission_control.console.mount.setup_console`. A web layer
only: pages read through typed service queries (`mission_control.service.fleet`, ...) and
touch no table. The session cookie ``mc_session`` (HttpOnly, SameSite=Strict, always Secure)
opens a session kept by `service.accounts.console_sessions` (idle expiry), every POST carries a
CSRF token, and staff are authenticated through a `StaffDirectory`. Pages: fleet, cluster,
alerts, remote access, audit.
"""
