"""``appliance config``: print the hub.toml reference, or the resolved values."""

from __future__ import annotations

import argparse

from .config import KEYS, Config, docs_markdown


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--docs", action="store_true", help="print the reference of every key")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.docs:
        print(docs_markdown(), end="")
        return 0
    for k in KEYS:
        value = "(set)" if k.secret and config.get(k.section, k.name) else \
            repr(config.get(k.section, k.name))
        print(f"[{k.section}] {k.name} = {value}")
    return 0
