"""Errors of Mission Control's service layer.

The cluster's client has errors of its own (`cluster.link.errors`).

`ServiceError` subclasses are raised by the domain layer; the HTTP layer maps each
one to a status code and a JSON error body. Their messages are safe to show to the caller.
"""

from __future__ import annotations


class MissionControlError(Exception):
    """Base of every error this package raises on purpose."""


class ServiceError(MissionControlError):
    """A request the domain layer refuses; the message is meant for the caller."""

    code = "error"


class InvalidCredential(ServiceError):
    """Missing, unknown or revoked credential or token."""

    code = "unauthorized"


class Forbidden(ServiceError):
    """The credential is valid but does not reach this resource."""

    code = "forbidden"


class NotFound(ServiceError):
    """The named record does not exist."""

    code = "not_found"


class AlreadyExists(ServiceError):
    """A record with this unique name exists already."""

    code = "already_exists"


class StaleEpoch(ServiceError):
    """The message comes from a leader older than one already heard from (fenced)."""

    code = "stale_epoch"

    def __init__(self, epoch: int, newest: int) -> None:
        super().__init__(
            f"epoch {epoch} is older than epoch {newest} already accepted from this cluster"
        )
        self.epoch = epoch
        self.newest = newest


class MessageIdReused(ServiceError):
    """A message_id already used for a different kind of message."""

    code = "message_id_reused"


class DatabaseNotReady(ServiceError):
    """The database is missing or its schema is not at the current migration."""

    code = "database_not_ready"


class SecretsKeyMissing(ServiceError):
    """No usable secrets key (see `mission_control.secrets_key`): nothing sealed can be read."""

    code = "secrets_key_missing"
