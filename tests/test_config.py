"""hub.toml: every key has a default and documentation; bad files give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import config
from appliance.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_every_key_has_default_and_doc() -> None:
    seen = set()
    for k in config.KEYS:
        assert k.doc.strip().endswith((".", ")")), f"[{k.section}] {k.name} needs a sentence"
        assert (k.section, k.name) not in seen, f"duplicate key [{k.section}] {k.name}"
        seen.add((k.section, k.name))
    assert config.defaults()["sync"]["policy"] == "latest-wins"


def test_docs_file_covers_every_key_and_is_current() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    assert text == config.docs_markdown(), "docs/config.md is stale: run `appliance config --docs`"
    for k in config.KEYS:
        assert f"`{k.name}`" in text and f"## [{k.section}]" in text


def test_design_sections_are_all_present() -> None:
    sections = {k.section for k in config.KEYS}
    assert {"hub", "national", "sync", "backup", "health", "gpio"} <= sections


def test_load_overrides_and_types(tmp_path: Path) -> None:
    p = tmp_path / "hub.toml"
    p.write_text('[hub]\nid = "ramu"\n[sync]\ninterval_s = 30\n')
    cfg = config.load(p, tmp_path)
    assert cfg.get("hub", "id") == "ramu" and cfg.get("sync", "interval_s") == 30
    assert cfg.get("hub", "listen") == "0.0.0.0:8080"  # default kept


@pytest.mark.parametrize("body, words", [
    ("[hub\nid=1", "not valid TOML"),
    ("[nosuch]\nx = 1\n", "unknown section"),
    ("[hub]\nnosuch = 1\n", "unknown key"),
    ('[sync]\ninterval_s = "often"\n', "should be int"),
])
def test_bad_files_are_explained(tmp_path: Path, body: str, words: str) -> None:
    p = tmp_path / "hub.toml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=words):
        config.load(p, tmp_path)


def test_secrets_need_mode_0600(tmp_path: Path) -> None:
    p = tmp_path / "hub.toml"
    p.write_text('[national]\ntoken = "d2pat_secret"\n')
    p.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        config.load(p, tmp_path)
    p.chmod(0o600)
    assert config.load(p, tmp_path).get("national", "token") == "d2pat_secret"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", tmp_path)
