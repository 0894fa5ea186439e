"""``gridctl config`` through the real console entry point (typer's runner, no subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import load_site

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_validate_reference_site_prints_summary() -> None:
    result = runner.invoke(app, ["config", "validate", str(ROOT / "configs" / "misono.yaml")])
    assert result.exit_code == 0
    assert "7 nodes" in result.output and "7 routers" in result.output


def test_validate_broken_file_exits_2_without_traceback() -> None:
    broken = ROOT / "tests" / "config" / "broken" / "11-unknown-tariff.yaml"
    result = runner.invoke(app, ["config", "validate", str(broken)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "nodes[0].contract.tariff: unknown import tariff 'tepco-x'" in result.output


def test_validate_reports_every_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    good = ROOT / "configs" / "misono.yaml"
    result = runner.invoke(app, ["config", "validate", str(missing), str(good)])
    assert result.exit_code == 2
    assert f"{missing}: file not found" in result.output
    assert "ok: site 'misono'" in result.output


def test_schema_is_json_with_site_properties() -> None:
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"site", "nodes", "tariffs", "links"} <= set(schema["properties"])


def test_init_writes_a_template_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "site.yaml"
    result = runner.invoke(app, ["config", "init", "--nodes", "4", "--out", str(out)])
    assert result.exit_code == 0
    site = load_site(out)
    assert len(site.nodes) == 4 and len(site.links) == 4
    again = runner.invoke(app, ["config", "init", "--nodes", "4", "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_init_templates_echonet_homes_that_validate(tmp_path: Path) -> None:
    out = tmp_path / "site.yaml"
    result = runner.invoke(app, ["config", "init", "--nodes", "2", "--protocol", "echonet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    site = load_site(out)
    for node in site.nodes:
        kinds = {d.kind: d for d in node.devices}
        assert set(kinds) == {"pv_inverter", "battery", "meter", "switch", "router"}
        assert all(d.protocol.echonet is not None for k, d in kinds.items() if k != "router")
        assert kinds["router"].protocol.opcua is not None
        assert kinds["meter"].protocol.echonet.port == 3610
        assert [(s.device, s.channel) for s in node.load.switches] == [(f"{node.id}-switch", 0)]


def test_init_rejects_an_unknown_protocol_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "site.yaml"
    result = runner.invoke(app, ["config", "init", "--protocol", "bacnet", "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "--protocol: must be one of sunspec, echonet, not 'bacnet'" in result.output
    assert "Traceback" not in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("gridctl ")


def test_influx_url_with_a_password_is_refused_without_echoing_it(tmp_path: Path) -> None:
    broken = ROOT / "tests" / "config" / "broken" / "44-influx-url-credentials.yaml"
    for url in ("http://gridctl:s3cret@127.0.0.1:8086", "http://127.0.0.1:8086/?u=gridctl&p=s3cret"):
        path = tmp_path / "site.yaml"
        path.write_text(broken.read_text().replace("http://gridctl:s3cret@127.0.0.1:8086", url))
        result = runner.invoke(app, ["config", "validate", str(path)])
        assert result.exit_code == 2
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "storage.influxdb.url: " in result.output
        assert "s3cret" not in result.output


def test_deeply_nested_yaml_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("site:\n  name: " + "[" * 500 + "]" * 500 + "\n")
    result = runner.invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"{path}:2: YAML nesting deeper than 64 levels"
