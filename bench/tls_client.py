"""The tablet's side of ``bench.tls_bench``, run inside the tablet's network namespace:
``n`` times a new TCP connection, a TLS handshake verifying the hub's name against the CA
file only, and the first API call on it (``GET /api/system/info`` with Basic, as the app
sends it after login). Prints one JSON line of latencies in seconds."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import ssl
import sys
import time


def once(addr: str, port: int, name: str, ctx: ssl.SSLContext, auth: str
         ) -> tuple[float, float]:
    """(handshake done, first API reply read), both from the connect."""
    t0 = time.perf_counter()
    with socket.create_connection((addr, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        hs = time.perf_counter() - t0
        tls.sendall((f"GET /api/system/info HTTP/1.1\r\nHost: {name}\r\n"
                     f"Authorization: Basic {auth}\r\nAccept: application/json\r\n"
                     "Connection: close\r\n\r\n").encode())
        resp = http.client.HTTPResponse(tls)  # type: ignore[arg-type]
        resp.begin()
        body = resp.read()
        if resp.status != 200 or not body.startswith(b"{"):
            raise RuntimeError(f"{resp.status} {body[:100]!r}")
        return hs, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--name", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--wait", type=float, default=120.0)
    args = p.parse_args(argv)
    ctx = ssl.create_default_context(cafile=args.ca)
    auth = base64.b64encode(b"chcp:district").decode()
    deadline = time.monotonic() + args.wait
    while True:  # until the hub serves (it seeds the demo store first)
        try:
            once(args.addr, args.port, args.name, ctx, auth)  # also fills the login cache
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    hs, first = [], []
    for _ in range(args.n):
        h, f = once(args.addr, args.port, args.name, ctx, auth)
        hs.append(h)
        first.append(f)
    print(json.dumps({"handshake_s": hs, "first_call_s": first}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
