"""Staff accounts and who may act: users, logins (password and TOTP), API and session tokens,
and Mission Control's own hash-chained audit log with its signing key.
"""
