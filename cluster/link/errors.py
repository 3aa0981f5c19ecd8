"""What the cluster's Mission Control client raises (what the outbox catches).

- `MissionControlUnavailable`: the server could not be reached, timed out, or answered 5xx/429.
  Nothing is known to have been stored; retry the same message later (it is deduplicated).
- `MessageRejected`: the server understood the message and refused it (4xx: stale epoch 409,
  bad credential 401, wrong cluster 403, invalid body 4xx). Retrying the same bytes will not help.
"""

from __future__ import annotations

from cluster.errors import ClusterError


class MissionControlError(ClusterError):
    """Base of the errors of talking to Mission Control."""


class MissionControlUnavailable(MissionControlError):
    """Mission Control is unreachable or failing: retry later."""


class MessageRejected(MissionControlError):
    """Mission Control refused a message (4xx): do not retry it unchanged."""

    def __init__(
        self, status: int, code: str, message: str, newest_epoch: int | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        #: With a stale epoch (409): the newest epoch Mission Control has accepted from us.
        self.newest_epoch = newest_epoch
