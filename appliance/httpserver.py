"""The aiohttp runner and the error middleware both web services (hub and fleet) serve
through.

aiohttp answers requests it cannot parse (a URL over 8 KiB, headers over its limits, a
method with illegal characters, a broken chunked body) itself, before any middleware,
with a plain-text reply and a logged traceback. A client of a DHIS2 server expects a
WebMessage, and an IT focal point reading the log wants one line per refusal, not 40.
``WebMessageRunner`` keeps aiohttp's parsing and its limits, and only changes those
replies: a JSON WebMessage with aiohttp's status and a one-line log entry.

``error_middleware`` does the same for what reaches the app: every failure becomes a reply
(a WebMessage, or the fleet's HTML page) with the right status and one log line; only a
bug logs a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .dhis2.webmessage import web_message
from .errors import ApplianceError, ConfigError

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


# -- the error middleware --------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# (request, status, message, error code, WebMessage response) -> the reply
Respond = Callable[[web.Request, int, str, "str | None", Any], web.StreamResponse]

# how long a body the handler did not read may take to arrive before the connection closes
DRAIN_SECONDS = 10

_STATUS_TEXT = {
    404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
    415: "Unsupported Media Type", 400: "Bad Request",
}


def error_middleware(respond: Respond, *, service: str, logger: logging.Logger) -> Middleware:
    """A middleware turning every failure into ``respond(...)``: the one exception
    hierarchy (``ApplianceError``) and aiohttp's HTTP errors with their status, a body
    that could not be decoded as a 400 (closing the connection), anything else as a
    500. Refusals log one line on ``logger`` as ``<service>: <status> <method> <path>
    from <client>: <message>``; only the 500 logs a traceback."""

    def refused(request: web.Request, status: int, text: str) -> None:
        # a client's mistake, not ours: one line (the message never holds secrets)
        logger.log(logging.WARNING if status >= 500 else logging.INFO, "%s: %d %s %s from %s: %s",
                   service, status, request.method, request.path, request.remote, text[:200])

    async def reply(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApplianceError as e:
            refused(request, e.http_status, e.message)
            return respond(request, e.http_status, e.message, e.error_code, e.response)
        except web.RequestPayloadError as e:
            # a body aiohttp could not decode (corrupt gzip, broken chunking): refuse it and
            # close the connection, since the rest of the stream cannot be trusted either
            refused(request, 400, "unreadable body: " + " ".join(str(e).split()))
            request.content.feed_eof()
            resp = respond(request, 400, "The request body could not be read: it is not valid "
                           f"for its Content-Encoding "
                           f"({request.headers.get('Content-Encoding', 'none')})", None, None)
            resp.force_close()
            return resp
        except web.HTTPException as e:
            if e.status < 400:
                raise
            if e.status == 404:
                text = f"No resource at {request.method} {request.path}"
            elif e.status == 405:
                allowed = ", ".join(sorted(getattr(e, "allowed_methods", ()) or ()))
                text = f"Method {request.method} is not supported here" + (
                    f"; use {allowed}" if allowed else "")
            elif e.status == 413:
                text = "Request body is too large"
            else:
                text = e.text if e.text and not e.text.startswith("<") else _STATUS_TEXT.get(
                    e.status, e.reason)
            refused(request, e.status, text)
            return respond(request, e.status, text, None, None)
        except Exception:
            logger.exception("unhandled error on %s %s", request.method, request.path)
            return respond(request, 500, f"The {service} could not complete this request; it "
                           "has been logged", None, None)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await reply(request, handler)
        await _discard_unread_body(request, response)
        return response
    return errors


async def _discard_unread_body(request: web.Request, response: web.StreamResponse) -> None:
    """Read and drop a compressed body the handler did not need (a DELETE or logout
    sent with one). aiohttp would otherwise drain it after the reply and log a corrupt
    one as a traceback; here a corrupt body just closes the connection."""
    content = request.content
    if content.is_eof() or request.headers.get("Content-Encoding", "identity") == "identity":
        return
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while not content.is_eof():
                await content.readany()
    except (web.RequestPayloadError, TimeoutError):
        content.feed_eof()
        response.force_close()


async def start_site(runner: web.BaseRunner, host: str, port: int, *,
                     ssl_context: ssl.SSLContext | None = None) -> web.TCPSite:
    """Listen on ``host:port``, or say in one line why not (a port already taken by the
    demo or another hub, a privileged port, an address this machine does not have)."""
    site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True,
                       ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as e:
        where = f"{host or '0.0.0.0'}:{port}"
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is already in use on {host or 'this machine'} "
                              "(is the demo or another hub running?); stop it, or choose "
                              "another port with --port or [hub] listen") from None
        raise ConfigError(f"cannot listen on {where}: {e.strerror or e}") from None
    return site

