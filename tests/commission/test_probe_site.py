"""``gridctl commission probe|scan`` against the emulated Misono block (``gridctl emulate`` process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gridctl.cli.commands_devices import register
from tests.fixtures.emulators import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def run(*args: str):
    return CliRunner().invoke(cli(), list(args), env={"COLUMNS": "200"})


def test_probe_passes_on_the_whole_emulated_site(emulated_site, tmp_path: Path) -> None:
    report = tmp_path / "handover" / "misono"
    result = run("commission", "probe", str(emulated_site.config_path), "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "result: PASS" in result.output
    body = json.loads(report.with_suffix(".json").read_text())
    assert body["result"] == "pass" and body["site"] == "misono"
    devices = {c["device_id"] for c in body["checks"]}
    assert len(devices) == 27
    connects = [c for c in body["checks"] if c["check"] == "connect"]
    assert len(connects) == 27 and all(c["status"] == "pass" for c in connects)
    assert not [c for c in body["checks"] if c["status"] == "fail"]
    md = report.with_suffix(".md").read_text()
    assert "| home-1-dgr | legs | PASS |" in md and "Result: **PASS**" in md


def test_active_probe_of_one_node_proves_battery_sign(emulated_site, tmp_path: Path) -> None:
    result = run("commission", "probe", str(emulated_site.config_path), "--node", "home-3", "--active",
                 "--report", str(tmp_path / "home3.md"))
    assert result.exit_code == 0, result.output
    checks = json.loads((tmp_path / "home3.json").read_text())["checks"]
    active = {c["device_id"]: c["status"] for c in checks if c["check"] == "active"}
    # home-3's battery uses the IEEE 1547 profile whose native sign is flipped
    assert active["home-3-battery"] == "pass"
    assert active["home-3-pv"] in ("pass", "skip")  # the emulated sun follows JST: skipped at night
    assert {c["device_id"] for c in checks} == {"home-3-pv", "home-3-battery", "home-3-meter", "home-3-dgr"}


def test_scan_lists_models_and_identity(emulated_site) -> None:
    from gridctl.config import load_site

    site = load_site(emulated_site.config_path)
    port = site.node("home-1").devices[0].protocol.modbus.port
    result = run("commission", "scan", f"127.0.0.1:{port}")
    assert result.exit_code == 0, result.output
    assert "SunSpec base 40000" in result.output and "serial EMU-home-1-pv" in result.output
    for model, name in ((1, "common"), (101, "inverter_single_phase"), (120, "nameplate"), (123, "controls")):
        assert str(model) in result.output and name in result.output
    wrong = run("commission", "scan", f"127.0.0.1:{port}", "--unit", "9")
    assert wrong.exit_code == 1 and "wrong unit id" in wrong.output


def test_scan_errors_are_one_line() -> None:
    refused = run("commission", "scan", f"127.0.0.1:{free_port()}", "--timeout", "0.5")
    assert refused.exit_code == 1
    assert "connection refused" in refused.output and "Traceback" not in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    bad = run("commission", "scan", "127.0.0.1:notaport")
    assert bad.exit_code == 2 and "bad port" in bad.output


def test_probe_usage_errors_exit_2(emulated_site, tmp_path: Path) -> None:
    unknown = run("commission", "probe", str(emulated_site.config_path), "--node", "nowhere")
    assert unknown.exit_code == 2 and "unknown node" in unknown.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("site: {id: x}\n")
    result = run("commission", "probe", str(broken))
    assert result.exit_code == 2 and "Traceback" not in result.output
