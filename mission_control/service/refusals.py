"""Refusals of the staff and remote-support services, each with the HTTP status it maps to.

Every message is one line meant for the caller. The HTTP layer reads `http_status`; the CLI
prints the message.
"""

from __future__ import annotations

from mission_control.errors import ServiceError


class Refused(ServiceError):
    """Base: a request the staff or support service refuses."""

    code = "refused"
    http_status = 400


class InvalidInput(Refused):
    """Input that is well-formed JSON but not acceptable (weak password, secret config key)."""

    code = "invalid_request"
    http_status = 422


class LoginRefused(Refused):
    """Wrong username, password or TOTP code (one generic line), or a disabled account."""

    code = "login_refused"
    http_status = 401


class LoginThrottled(Refused):
    """Too many failed logins: the account is locked for a while."""

    code = "too_many_attempts"
    http_status = 429


class InvalidState(Refused):
    """The record is not in a state that allows this (grant ended, request not pending...)."""

    code = "invalid_state"
    http_status = 409


class CommandRefused(Refused):
    """The grant's role does not allow this command."""

    code = "command_refused"
    http_status = 403


class ApprovalInvalid(Refused):
    """A signed approval that is forged, altered or does not match its request."""

    code = "approval_rejected"
    http_status = 422


class ApprovalReplayed(Refused):
    """A signed approval whose id was honoured before (422: see `ClusterMessageRefused`)."""

    code = "approval_replayed"
    http_status = 422


class ApproverUnverifiable(Refused):
    """The provider that would verify an approval's approver did not answer: nothing is
    decided (503: the cluster sends the approval again later)."""

    code = "approver_provider_unavailable"
    http_status = 503


class KeyConflict(Refused):
    """A cluster key different from the pinned one, or no pinned key yet (422: see
    `ClusterMessageRefused`)."""

    code = "public_key_conflict"
    http_status = 422


class ClusterMessageRefused(Refused):
    """A cluster message refused for what it says (forged or replayed approval, another key, a
    transition the request does not allow). Always 422, whatever the refusal's own status: a
    cluster's outbox reads 409 as "a newer leader exists" (epoch fencing) and stops delivering,
    while any other 4xx sets that one message aside and delivers the rest. The code is kept."""

    http_status = 422

    def __init__(self, refusal: Refused) -> None:
        super().__init__(str(refusal))
        self.code = refusal.code
