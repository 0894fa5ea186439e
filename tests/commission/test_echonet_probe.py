"""``gridctl commission probe`` on the ECHONET Lite site: ECHONET devices, an ECHONET switch and a
relay board, emulated in-process on loopback; the CLI runs as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from ruamel.yaml import YAML

from gridctl.config import load_site
from sim.emulators.site import build_site
from tests.fixtures.emulators import REPO, write_site_config
from tests.fixtures.relay_site import dump_tree

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"
CLI = "from gridctl.cli import main; main()"


async def _probe(config: Path, *args: str) -> tuple[int, dict, str]:
    report = config.parent / "report"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI, "commission", "probe", str(config), "--report", str(report), *args,
        cwd=config.parent, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "250"})
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    body = json.loads(report.with_suffix(".json").read_text()) if report.with_suffix(".json").exists() else {}
    return proc.returncode, body, out.decode() + err.decode()


def _checks(body: dict) -> dict[tuple[str, str], tuple[str, str]]:
    return {(c["device_id"], c["check"]): (c["status"], c["detail"]) for c in body["checks"]}


@pytest.fixture
async def home_and_store(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.chdir(tmp_path)
    config = write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1", "store"])
    emulated = build_site(load_site(config), base_dir=tmp_path)
    await emulated.start()
    try:
        yield config, emulated
    finally:
        await emulated.stop()


@pytest.mark.integration
async def test_probe_checks_echonet_devices_and_toggles_switches(home_and_store) -> None:  # noqa: ANN001
    config, emulated = home_and_store
    code, body, output = await _probe(config, "--node", "home-1", "--node", "store", "--active",
                                      "--hold-s", "0.5")
    checks = _checks(body)
    assert code == 0, output
    assert "Traceback" not in output
    for device in ("home-1-pv", "home-1-battery", "home-1-meter", "home-1-switch"):
        assert checks[(device, "object")][0] == "pass", device
        assert checks[(device, "epcs")][0] == "pass", device
    assert "object 0x027D01 listed" in checks[("home-1-battery", "object")][1]
    assert checks[("home-1-meter", "fixed-counters")][0] == "pass"
    assert checks[("home-1-meter", "sign")][0] == "pass"  # the node balance holds
    assert checks[("home-1-battery", "fail-safe")] [0] == "warn"  # no revert timer: said so
    assert checks[("home-1-battery", "active")][0] == "pass"  # charge/discharge seen by the smart meter
    assert checks[("home-1-switch", "active")][0] == "pass"
    assert checks[("store-relays", "active")][0] == "pass"
    assert "2 channel(s) toggled" in checks[("store-relays", "active")][1]
    # left as found: every circuit connected
    assert emulated.echonet["home-1-switch"].is_on
    assert not any(emulated.relays["store-relays"].circuit_energised(ch) for ch in (0, 1))


@pytest.mark.integration
async def test_probe_names_a_switch_that_does_not_obey_in_one_line(home_and_store) -> None:  # noqa: ANN001
    config, emulated = home_and_store
    emulated.echonet["home-1-switch"].stuck = True  # acknowledges, does not switch
    emulated.relays["store-relays"].faults.stuck_channels = {1}
    code, body, output = await _probe(config, "--node", "home-1", "--node", "store", "--active",
                                      "--hold-s", "0.5")
    checks = _checks(body)
    assert code == 1
    assert checks[("home-1-switch", "active")] == ("fail", "channel 0: switched off, feedback still on")
    assert checks[("store-relays", "active")] == ("fail", "channel 1: switched off, feedback still on")
    # left as found, stuck or not: every circuit connected
    assert emulated.echonet["home-1-switch"].is_on
    assert not any(emulated.relays["store-relays"].circuit_energised(ch) for ch in (0, 1))
    assert "Traceback" not in output


@pytest.mark.integration
async def test_probe_names_a_missing_object_and_missing_epcs(home_and_store, tmp_path) -> None:  # noqa: ANN001
    config, emulated = home_and_store
    tree = YAML(typ="rt").load(config.read_text())
    switch = next(d for n in tree["nodes"] for d in n["devices"] if d["id"] == "home-1-switch")
    switch["protocol"]["echonet"]["instance"] = 2  # no such object on the home's node
    wrong = dump_tree(tree, tmp_path / "wrong.yaml")
    battery = emulated.echonet["home-1-battery"].object
    del battery.properties[0xEC]  # a battery that cannot take a discharge power setting
    code, body, output = await _probe(wrong, "--node", "home-1")
    checks = _checks(body)
    assert code == 1
    status, detail = checks[("home-1-switch", "connect")]
    assert status == "fail" and detail.startswith("the node at 127.0.0.11:")
    assert detail.endswith("has no object 0x05FD02; it lists 0x027901, 0x027D01, 0x028801, 0x05FD01 "
                           "(class or instance wrong?)")
    assert checks[("home-1-battery", "epcs")] == (
        "fail", "not settable (0x9E): 0xEC (a quirk in the profile, or another product?)")
    assert "Traceback" not in output
    assert checks[("home-1-pv", "object")][0] == "pass"  # the node kept serving the other objects
