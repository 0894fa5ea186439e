"""``gridctl emulate`` usage and start-up errors: one line, exit 2 for config, 1 for a busy port."""

from __future__ import annotations

import socket
from pathlib import Path

import typer
from typer.testing import CliRunner

from gridctl.cli.commands_devices import register
from gridctl.config import load_site
from tests.fixtures.emulators import write_site_config


def run(*args: str):
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args))


def test_bad_config_exits_2_with_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "site.yaml"
    broken.write_text("site:\n  id: x\nnodes: []\n")
    result = run("emulate", str(broken))
    assert result.exit_code == 2
    assert str(broken) in result.output and "Traceback" not in result.output


def test_port_in_use_exits_1_in_one_line(tmp_path: Path) -> None:
    config = write_site_config(tmp_path, node_ids=["home-1"])
    port = load_site(config).node("home-1").devices[0].protocol.modbus.port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        result = run("emulate", str(config))
    assert result.exit_code == 1, result.output
    assert "cannot serve" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
