"""``gridctl release`` (the unit's ExecStopPost) hands an ECHONET Lite battery back to its own
control: such a battery has no revert timer and would otherwise hold the last discharge command
of a daemon that crashed. Real emulated home (ECHONET node on loopback, OPC UA router), the
real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import sys

from drivers.profile import EchonetEndpoint
from drivers.echonet.devices import EchonetBattery
from gridctl.config import load_site
from sim.emulators.site import build_site
from tests.fixtures.emulators import REPO, write_site_config

ECHONET_SITE = REPO / "configs" / "misono-echonet.yaml"


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gridctl.cli import main; main()", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_release_returns_an_echonet_battery_to_auto(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    path = write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1"])
    site = load_site(path)
    emulated = build_site(site, base_dir=tmp_path)
    await emulated.start()
    try:
        battery_cfg = next(d for d in site.node("home-1").devices if d.kind == "battery")
        emulator = emulated.echonet[battery_cfg.id]
        ep = battery_cfg.protocol.echonet
        driver = EchonetBattery(EchonetEndpoint(ep.host, ep.port, ep.instance), name="test")
        await driver.connect()
        await driver.write_battery_power_kw(2.0, revert_s=30.0)  # what a crashed daemon left
        await driver.close()
        assert emulator.mode == "discharging"
        code, out, err = await _cli("release", str(path))
        assert code == 0, err
        assert "released 3 of 3 device(s)" in out  # PV, battery, router
        assert emulator.mode == "auto"
    finally:
        await emulated.stop()


async def test_release_names_an_unreachable_device_in_one_line(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    path = write_site_config(tmp_path, source=ECHONET_SITE, node_ids=["home-1"])
    code, out, err = await _cli("release", str(path))  # nothing emulated: nothing answers
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("release: home-1-") for line in lines)
    assert "Traceback" not in err and "released 0 of 3 device(s)" in out
