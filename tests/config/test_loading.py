"""Every shipped config validates; every broken config fails at its marked line and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridctl.config import ConfigError, load_profiles, load_site
from gridctl.config.schema import site_json_schema_text
from gridctl.config.template import site_template

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
SITE_FILES = sorted(p for p in CONFIGS.rglob("*.yaml") if p.parent.name not in ("devices", "sweeps"))


@pytest.mark.parametrize("path", SITE_FILES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_site_file_validates(path: Path) -> None:
    site = load_site(path)
    assert site.nodes, "a site has members"
    assert all(d.profile in site.device_profiles for _, d in site.all_devices())


def test_every_device_profile_loads() -> None:
    profiles = load_profiles(CONFIGS / "devices")
    files = sorted((CONFIGS / "devices").glob("*.yaml"))
    assert len(profiles) == len(files) >= 4
    assert {p.kind for p in profiles.values()} == {"pv_inverter", "battery", "meter", "router", "relay_board", "switch"}
    echonet = {p.id: p.echonet.class_code for p in profiles.values() if p.protocol == "echonet_lite"}
    assert echonet == {"generic-echonet-pv": 0x0279, "generic-echonet-battery": 0x027D,
                       "generic-echonet-smart-meter": 0x0288, "generic-echonet-switch": 0x05FD,
                       "example-echonet-battery-discharge-positive": 0x027D}
    # the drivers apply the specification's 0xD3 sign; only the example maker inverts it
    assert not profiles["generic-echonet-battery"].echonet.quirks.invert_power_sign
    assert profiles["example-echonet-battery-discharge-positive"].echonet.quirks.invert_power_sign


def test_reference_site_shape() -> None:
    site = load_site(CONFIGS / "misono.yaml")
    homes = [n for n in site.nodes if n.member_type == "home"]
    assert len(homes) == 5
    assert sum(1 for h in homes if not h.batteries) == 1
    assert all(4.0 <= h.pv_inverters[0].rating.ac_kw <= 5.0 for h in homes)
    assert all(5 <= b.rating.capacity_kwh <= 13 for h in homes for b in h.batteries)
    assert {n.member_type for n in site.nodes} == {"home", "store", "mall"}
    assert all(n.router is not None for n in site.nodes)
    assert site.market.settlement_period_min == 30


def _expected(path: Path) -> tuple[int, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    expect = lines[0].removeprefix("# expect: ")
    marked = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith("# <-- ERROR")]
    assert len(marked) == 1, f"{path.name}: exactly one line must carry the ERROR marker"
    return marked[0], expect


def test_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 30


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_config_names_line_and_key(path: Path) -> None:
    line, expect = _expected(path)
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    rendered = [str(issue) for issue in caught.value.issues]
    wanted = f"{path}:{line}: {expect}"
    assert any(r.startswith(wanted) or (f"{path}:{line}: " in r and expect in r) for r in rendered), (
        f"expected '{wanted}', got {rendered}"
    )


def test_missing_file_is_one_issue(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(tmp_path / "nope.yaml")
    assert [i.message for i in caught.value.issues] == ["file not found"]


def test_non_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_site(path)


def test_schema_file_is_current() -> None:
    committed = (CONFIGS / "schema.json").read_text(encoding="utf-8")
    assert committed == site_json_schema_text(), "run: gridctl config schema --out configs/schema.json"


def test_loaded_site_is_frozen() -> None:
    site = load_site(CONFIGS / "misono.yaml")
    with pytest.raises(Exception):
        site.control.poll_period_s = 9  # type: ignore[misc]


def _unbounded_numbers(node: object, where: str) -> list[str]:
    """Key paths in a JSON schema of numbers with neither a maximum nor a fixed set of values."""
    found: list[str] = []
    if isinstance(node, dict):
        numeric = node.get("type") in ("number", "integer")
        fixed = "const" in node or "enum" in node
        if numeric and not fixed and not {"maximum", "exclusiveMaximum"} & node.keys():
            found.append(where)
        for key, value in node.items():
            found += _unbounded_numbers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _unbounded_numbers(value, f"{where}[{i}]")
    return found


def test_every_number_in_the_schema_has_an_upper_bound() -> None:
    schema = json.loads(site_json_schema_text())
    assert _unbounded_numbers(schema, "") == []


@pytest.mark.parametrize("literal", [".inf", "-.inf", ".nan", "1e999", "-1e999"])
def test_no_non_finite_number_validates(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(site_template(2).replace("max_charge_kw: 4.0", f"max_charge_kw: {literal}", 1))
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert [i.message for i in caught.value.issues] == [
        "must be a finite number (not .inf, .nan or beyond float range like 1e999)"
    ]


def test_devices_behind_one_gateway_differ_by_unit_id(tmp_path: Path) -> None:
    """Same host and port with different Modbus unit ids are different devices (a gateway)."""
    text = site_template(2).replace(
        "{host: 192.0.2.2, port: 502, unit_id: 1}", "{host: 192.0.2.1, port: 502, unit_id: 2}", 1
    )
    path = tmp_path / "site.yaml"
    path.write_text(text)
    site = load_site(path)
    hosts = [d.protocol.modbus.host for _, d in site.all_devices()[:2] if d.protocol.modbus]
    assert hosts == ["192.0.2.1", "192.0.2.1"]


def test_deep_block_nesting_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text("".join("  " * i + f"k{i}:\n" for i in range(400)) + "  " * 400 + "x: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    assert [str(i) for i in caught.value.issues] == [f"{path}:65: YAML nesting deeper than 64 levels"]


def test_a_device_profile_that_cannot_be_loaded_is_one_issue(tmp_path: Path) -> None:
    (tmp_path / "deep.yaml").write_text("id: " + "{a: " * 300 + "1" + "}" * 300 + "\n")
    (tmp_path / "bad-scalar.yaml").write_text("id: x\nrevert_timeout_s: !!float sixty\n")
    for name, line, message in (("deep.yaml", 1, "YAML nesting deeper than 64 levels"),
                                ("bad-scalar.yaml", 2, "YAML value error: could not convert")):
        folder = tmp_path / name.removesuffix(".yaml")
        folder.mkdir()
        (folder / name).write_text((tmp_path / name).read_text())
        with pytest.raises(ConfigError) as caught:
            load_profiles(folder)
        (issue,) = caught.value.issues
        assert str(issue).startswith(f"{folder / name}:{line}: {message}")
