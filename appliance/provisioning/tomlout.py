"""A small TOML writer for the flat hub.toml shape (the stdlib only reads TOML)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name, ensure_ascii=False)


def value(v: Any) -> str:
    """One TOML value. JSON string escapes (\\n, \\", \\uXXXX) are valid TOML basic strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML has no portable spelling for {v!r}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }" \
            if v else "{}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(doc: Mapping[str, Mapping[str, Any]],
          comments: Mapping[tuple[str, str], str] | None = None, header: str = "") -> str:
    """``{section: {key: value}}`` as TOML; ``comments[(section, key)]`` goes above the key."""
    comments = comments or {}
    out = [header.rstrip("\n")] if header else []
    for section, items in doc.items():
        if out:
            out.append("")
        out.append(f"[{key(section)}]")
        for name, v in items.items():
            note = comments.get((section, name))
            if note:
                out.extend(f"# {line}" for line in note.splitlines())
            out.append(f"{key(name)} = {value(v)}")
    return "\n".join(out) + "\n"
