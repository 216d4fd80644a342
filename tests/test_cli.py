"""The ``appliance`` console script: each process loads only its own subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from appliance import cli

# what each long-running program on the hub must not carry: the fleet's ACME client, the
# national stand-in, the demo, Babel's catalogue tools (each was in every process)
FOREIGN = ("appliance.fleet", "appliance.national", "appliance.demo", "appliance.i18ncmd",
           "babel.messages", "acme")


@pytest.mark.parametrize("command", ["sync", "health", "hub", "dns"])
def test_a_hub_program_imports_only_its_own_subcommand(command: str) -> None:
    code = ("import sys\nfrom appliance import cli\n"
            f"cli.build_parser([{command!r}, '--config', 'x.toml'])\n"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert f"{cli.COMMANDS[command][0]}" in out
    assert [m for m in out if m.startswith(FOREIGN)] == []


def test_help_still_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    shown = capsys.readouterr().out
    assert all(name in shown for name in cli.COMMANDS)


def test_a_subcommands_own_options_still_parse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["config", "--help"])
    assert e.value.code == 0
    assert "--config" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli.main(["no-such-command"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
