"""Every error leaves the server as JSON `{"error": {"code", "message"}}`, never a traceback.

Mapping: domain errors (`ServiceError`) by class, or by their `http_status`; aiohttp's own HTTP
errors (404, 405, 413) by status; an unreachable database is 503 (the cluster retries later);
anything unexpected is logged and answered 500 with no details.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from contract.messages import ErrorBody, ErrorReply
from mission_control.api.bodies import RequestRejected
from mission_control.app_keys import SETTINGS
from mission_control.errors import (
    AlreadyExists,
    DatabaseNotReady,
    Forbidden,
    InvalidCredential,
    MessageIdReused,
    NotFound,
    ServiceError,
    StaleEpoch,
)

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS: dict[type[ServiceError], int] = {
    InvalidCredential: 401,
    Forbidden: 403,
    NotFound: 404,
    AlreadyExists: 409,
    StaleEpoch: 409,
    MessageIdReused: 409,
    DatabaseNotReady: 503,
}
_HTTP_CODES = {
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed on this route"),
    413: ("body_too_large", "the body is larger than the limit"),
}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    newest_epoch: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = ErrorReply(error=ErrorBody(code=code, message=message, newest_epoch=newest_epoch))
    return web.Response(
        body=body.model_dump_json(exclude_none=True).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestRejected as error:
        return error_response(error.status, error.code, error.message)
    except ServiceError as error:
        status = STATUS.get(type(error))
        if status is None:
            status = int(getattr(error, "http_status", 400))
        newest = error.newest if isinstance(error, StaleEpoch) else None
        return error_response(status, error.code, str(error), newest_epoch=newest)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code, message = _HTTP_CODES.get(error.status, ("http_error", error.reason))
        if error.status == 413:
            message = f"the body is larger than {request.app[SETTINGS].max_body_bytes} bytes"
        # A 405 names the methods the route has (RFC 9110 15.5.6).
        allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return error_response(error.status, code, message, headers=allow)
    except (OperationalError, InterfaceError, PoolTimeout, OSError) as error:
        log.warning("database unavailable: %s", error)
        return error_response(503, "unavailable", "the database is unavailable, retry later")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")
