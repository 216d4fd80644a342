"""Downloading a release bundle over a link that drops (#13): HTTP ``Range`` resumes.

Bytes go to ``<sha256>.raucb.part`` as they arrive; after a cut the next attempt asks for
``Range: bytes=<what we have>-`` and appends. A slice ends after ``max_s`` seconds even
when nothing failed, so the agent can report progress and learn whether the offer still
stands between slices. Once the file has ``size`` bytes its SHA-256 is checked; a file
that does not match is deleted (it would never match) and the download starts over.

Blocking (stdlib ``http.client``, run in a worker thread like the heartbeat's POST): a
few hundred MB stream through one 64 KiB buffer, and aiohttp is not loaded into the
health agent for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import signing
from .heartbeat import reply_size, request_headers, request_size

CHUNK = 64 * 1024
SYNC_EVERY = 8 * 1024 * 1024  # fsync the partial file this often: a power cut keeps it
_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Slice:
    have: int                  # bytes on disk after this slice
    complete: bool = False     # all ``size`` bytes are there (not yet hash-checked)
    error: str | None = None   # why the slice ended early (a cut, an HTTP error)
    status: int | None = None
    refused: bool = False      # the fleet will not serve it (4xx): ask again what to run
    sent_bytes: int = 0        # on the modem (the request; ``heartbeat.request_size``)
    received_bytes: int = 0    # the reply's headers and what came of its body


def part_path(directory: Path, sha256: str) -> Path:
    return directory / f"{sha256}.raucb.part"


def bundle_path(directory: Path, sha256: str) -> Path:
    return directory / f"{sha256}.raucb"


def read_headers(hub_id: str, token: str, url: str) -> dict[str, str]:
    """The fleet's hub authentication for a GET: the HMAC covers the path as sent."""
    u = urllib.parse.urlsplit(url)
    target = (u.path or "/") + (f"?{u.query}" if u.query else "")
    headers = request_headers(hub_id, token, signing.target_message(target), gzipped=False)
    del headers["Content-Type"]  # nothing is sent
    return headers


def fetch_slice(url: str, part: Path, size: int, headers: dict[str, str], *,
                timeout_s: float = 60.0, max_s: float = 60.0,
                stop: threading.Event | None = None,
                progress: Callable[[int], None] | None = None) -> Slice:
    """Download more of ``url`` into ``part`` for up to ``max_s`` seconds. Never raises for
    the network: a cut is a ``Slice`` with an error and the bytes kept."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:  # not this release's file: start over
        part.unlink()
        have = 0
    if have == size:
        return Slice(have, complete=True)
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname or "", u.port, timeout=timeout_s)
    req = dict(headers)
    if have:
        req["Range"] = f"bytes={have}-"
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    sent = request_size("GET", path, req)
    try:
        try:
            conn.connect()  # apart from the request: a refused connection sent nothing
        except OSError as e:
            return Slice(have, error=f"fleet unreachable: {type(e).__name__} {e}".strip())
        try:
            conn.request("GET", path, headers=req)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            return Slice(have, error=f"fleet unreachable: {type(e).__name__} {e}".strip(),
                         sent_bytes=sent)
        status = resp.status
        head = reply_size(resp, whole=True)  # the headers; the body as it is read
        if status == 416:  # asked past the end: what we have is all there is, or wrong
            got = len(resp.read(4096))
            if have == size:
                return Slice(have, complete=True, status=status, sent_bytes=sent,
                             received_bytes=head + got)
            part.unlink(missing_ok=True)
            return Slice(0, error="the fleet's file is shorter than offered; starting over",
                         status=status, sent_bytes=sent, received_bytes=head + got)
        if status >= 400:
            raw = resp.read(2048)
            text = raw.decode("utf-8", "replace")
            return Slice(have, error=f"the fleet answered HTTP {status} {_message(text)}".strip(),
                         status=status, refused=400 <= status < 500, sent_bytes=sent,
                         received_bytes=head + len(raw))
        if status == 206:
            m = _RANGE.match(resp.getheader("Content-Range", ""))
            if m is None or int(m.group(1)) != have:
                part.unlink(missing_ok=True)
                return Slice(0, error="the fleet resumed at the wrong place; starting over",
                             status=status, sent_bytes=sent, received_bytes=head)
            mode = "ab"
        elif status == 200:
            mode, have = "wb", 0  # the whole file again (the fleet ignored Range)
        else:
            return Slice(have, error=f"the fleet answered HTTP {status}", status=status,
                         sent_bytes=sent, received_bytes=head)
        start = have
        sl = _stream(resp, part, mode, have, size, max_s, stop, progress, status)
        return dataclasses.replace(sl, sent_bytes=sent,
                                   received_bytes=head + max(0, sl.have - start))
    finally:
        conn.close()


def _stream(resp: http.client.HTTPResponse, part: Path, mode: str, have: int, size: int,
            max_s: float, stop: threading.Event | None,
            progress: Callable[[int], None] | None, status: int) -> Slice:
    deadline = time.monotonic() + max_s
    since_sync = 0
    error = None
    with open(part, mode) as out:
        try:
            while have < size:
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    break
                chunk = resp.read(min(CHUNK, size - have))
                if not chunk:
                    error = "the connection closed before the whole file came"
                    break
                out.write(chunk)
                have += len(chunk)
                since_sync += len(chunk)
                if since_sync >= SYNC_EVERY:
                    out.flush()
                    os.fsync(out.fileno())
                    since_sync = 0
                if progress is not None:
                    progress(have)
        except (OSError, http.client.HTTPException) as e:
            error = f"download cut: {type(e).__name__} {e}".strip()
        finally:
            out.flush()
            with contextlib.suppress(OSError):
                os.fsync(out.fileno())
    return Slice(have, complete=have >= size, error=error, status=status)


def _message(text: str) -> str:
    """The fleet's WebMessage text, else the start of the body."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    return str(doc.get("message", ""))[:300] if isinstance(doc, dict) else ""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
