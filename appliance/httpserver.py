"""The aiohttp runner both web services (hub and fleet) serve through.

aiohttp answers requests it cannot parse (a URL over 8 KiB, headers over its limits, a
method with illegal characters, a broken chunked body) itself, before any middleware,
with a plain-text reply and a logged traceback. A client of a DHIS2 server expects a
WebMessage, and an IT focal point reading the log wants one line per refusal, not 40.
``WebMessageRunner`` keeps aiohttp's parsing and its limits, and only changes those
replies: a JSON WebMessage with aiohttp's status and a one-line log entry.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .dhis2.webmessage import web_message

log = logging.getLogger(__name__)


def _reason(exc: BaseException | None, message: str | None) -> str:
    """What was wrong, in words (aiohttp's own text echoes raw request bytes)."""
    if isinstance(exc, LineTooLong):
        return "the URL or a header is longer than the 8 KiB the server accepts"
    if isinstance(exc, BadHttpMethod):
        return "the HTTP method is not one the server knows"
    text = str(getattr(exc, "message", None) or message or "").strip()
    return text.splitlines()[0][:120] if text else ""


class _Handler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:  # a bug in the app: keep aiohttp's traceback in the log
            return super().handle_error(request, status, exc, message)
        reason = _reason(exc, message)
        log.info("refused an unreadable request from %s: %d %s", request.remote, status, reason)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send the error")
        text = "The request could not be read" + (f": {reason}" if reason else "")
        resp = web.Response(status=status, body=orjson.dumps(web_message(status, text)),
                            content_type="application/json", charset="utf-8")
        resp.force_close()
        return resp


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class WebMessageRunner(web.AppRunner):
    """``web.AppRunner`` whose protocol-level refusals are WebMessages (see above)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # only __call__ differs; aiohttp exposes no hook for it
        return server


def make_runner(app: web.Application, **kwargs: Any) -> WebMessageRunner:
    kwargs.setdefault("access_log", None)
    kwargs.setdefault("handle_signals", False)
    return WebMessageRunner(app, **kwargs)
