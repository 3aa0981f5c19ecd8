"""Staff accounts and who may act: users (TOTP secrets sealed), logins (password and TOTP,
throttled per source and name: `login_throttle`), API and session tokens, and Mission Control's
own hash-chained audit log with its signing key.
"""
