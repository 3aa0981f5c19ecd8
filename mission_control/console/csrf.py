"""CSRF tokens: every console form carries one, every POST is checked before it does anything.

- Logged-in forms carry the session's token (`ConsoleSession.csrf_token`).
- The login form has no session yet: it uses a double-submit token, set in an HttpOnly,
  SameSite=Strict cookie scoped to the login path and repeated in the form. Another site can
  neither read nor set that cookie, so it cannot forge the pair (login CSRF).
Comparisons are constant-time; a missing or empty token never matches.
"""

from __future__ import annotations

import hmac
import secrets

FIELD = "csrf_token"
LOGIN_COOKIE = "mc_login"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(presented: str | None, expected: str | None) -> bool:
    """True only when both are non-empty and equal (constant-time)."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
