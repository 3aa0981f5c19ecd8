"""The Mission Control web console: server-rendered pages for support engineers and operators.

Mounted under ``/console/`` by `mission_control.console.mount.setup_console`. Sessions live in
`console_sessions` (cookie ``mc_session``, HttpOnly, SameSite=Strict, Secure over TLS, idle
expiry), every POST carries a CSRF token, and staff are authenticated through a
`StaffDirectory`. Pages: fleet, cluster, alerts, remote access, audit.
"""
