"""``appliance national``: serve the national DHIS2 stand-in (demo, tests, benches)."""

from __future__ import annotations

import argparse

from ..config import Config
from ..hub import command as hub_command
from .app import create_app


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demo", action="store_true",
                   help="seed the embedded national demo data into an empty store")
    p.add_argument("--host", help="address to listen on (default from [hub] listen)")
    p.add_argument("--port", type=int, help="port to listen on (default from [hub] listen)")


def run(args: argparse.Namespace, config: Config) -> int:
    return hub_command.serve_store(
        args, config, demo_data="national", name="national stand-in",
        demo_logins=hub_command.DEMO_LOGINS + ", dghs/district (national)",
        make_app=lambda store, _host, _port, _zc: create_app(config, store))
