"""Staff authentication for Mission Control: roles, passwords, TOTP, login throttle, API tokens,
and the box that seals secrets at rest (`secretbox`).

Pure logic only; the store and the HTTP handlers build on it. `auth.login` combines the pieces
into one decision per login attempt, with the audit event to append.
"""
