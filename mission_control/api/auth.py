"""Bearer authentication for the two kinds of callers: clusters and staff.

- A missing, malformed or unknown bearer is 401; a valid cluster credential used on another
  cluster's path is 403. The check runs before the body is read, so a caller without a valid
  credential learns nothing about the body's validity.
- Cluster credentials are cached for a short time (`credential_cache_s`, default 30 s) to save a
  query per message; a cache entry is keyed by the credential's digest, never the credential.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from mission_control.errors import Forbidden, InvalidCredential
from mission_control.service.accounts.bearer import digest


def bearer(request: web.Request) -> str:
    """The bearer token of the request; InvalidCredential when there is none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidCredential("missing bearer credential (Authorization: Bearer ...)")
    return token.strip()


class CredentialCache:
    """Remembers which cluster a credential digest belongs to, for `ttl_s` seconds."""

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[str, float]] = {}

    def get(self, credential: str) -> str | None:
        entry = self._entries.get(digest(credential))
        if entry is None or entry[1] < self._clock():
            return None
        return entry[0]

    def clear(self) -> None:
        """Forget everything (a credential was revoked: it must not stay accepted here)."""
        self._entries.clear()

    def put(self, credential: str, cluster_id: str) -> None:
        if self._ttl_s <= 0:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[digest(credential)] = (cluster_id, self._clock() + self._ttl_s)


def require_own_cluster(authenticated: str, requested: str) -> None:
    if authenticated != requested:
        raise Forbidden("this credential belongs to another cluster")
