"""The remote-support exception hierarchy; every message is one line a user can act on."""


class SupportError(Exception):
    """Base of every remote-support domain error."""


class PolicyError(SupportError, ValueError):
    """A support setting or a duration is invalid."""


class RequestError(SupportError, ValueError):
    """A request cannot be created as given (missing reason, bad duration...)."""


class InvalidTransition(SupportError):
    """The requested state change is not allowed from the request's current state."""


class ApprovalRejected(SupportError):
    """A signed approval is forged, replayed, stale or does not match its request."""
