"""Requests aiohttp cannot parse (oversized or NUL-bearing headers, a bad request line) are
answered in the API's JSON error shape and logged in one line.

aiohttp refuses such a request in its protocol handler, before routing and so before any
middleware: by default with a plain-text 400 and a traceback in the log (`aiohttp.server`).
It has no public hook for that answer, so `answer_in_json` gives the application's server a
request handler of our own whose `handle_error` writes `{"error": {"code": "bad_request",
...}}` and one log line naming the peer and the reason. Errors of our own handlers never come
here: `middleware.json_errors` answers them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from mission_control.api.middleware import error_response

log = logging.getLogger(__name__)


class _JsonErrors(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: too late for another answer
            return super().handle_error(request, status, exc, message)
        if status < 500:
            reason = exc.message if isinstance(exc, HttpProcessingError) else message
            text = " ".join(str(reason or "malformed request").split())[:200]
            # Not HTTP at all (TLS to a plain port, scanners): noise on any public address.
            level = logging.DEBUG if isinstance(exc, BadHttpMethod) else logging.WARNING
            log.log(level, "refused a malformed request from %s: %s", request.remote, text)
            response = error_response(status, "bad_request", f"malformed HTTP request: {text}")
        else:
            log.error("error handling a request from %s: %r", request.remote, exc)
            response = error_response(status, "internal_error", "internal error")
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=self._loop, **self._kwargs)


def answer_in_json(app: web.Application) -> None:
    """Make the servers built for `app` answer unparseable requests as described above."""
    make_handler = app._make_handler

    def make(**kwargs: Any) -> web.Server:
        server = make_handler(**kwargs)
        server.__class__ = _Server  # same state, our protocol factory
        return server

    app._make_handler = make  # type: ignore[method-assign]
