"""pymodbus's own debug output (frame hex dumps) never reaches the daemon's or the CLI's output.

The daemon's stdout is the journal: at ``--log-level debug`` gridctl's own debug lines are
wanted, pymodbus's per-request ``send: 0x0 0x1 ...`` / ``recv: ...`` / ``Processing: ...``
dumps are not (pymodbus's logger stays at WARNING). Real processes, real pymodbus servers on
loopback.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

from tests.fixtures.emulators import write_site_config

CLI = [sys.executable, "-c", "from gridctl.cli import main; main()"]
#: A pymodbus frame dump: "send: 0x0 0x1 0x0 ..." or any run of hex bytes.
FRAME_DUMP = re.compile(r"\b(send|recv|processing):\s*0x|(0x[0-9a-f]{1,2}\s+){6,}", re.IGNORECASE)


def frame_dumps(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if FRAME_DUMP.search(ln) or "pymodbus" in ln]


def test_daemon_at_debug_level_writes_no_modbus_frames(tmp_path):
    config = write_site_config(tmp_path, node_ids=["home-1"])
    run = subprocess.run(CLI + ["run", str(config), "--emulate", "--duration", "5",
                                "--log-level", "debug"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    # The Modbus devices were really polled (and the debug level is on) ...
    assert "device connected and healthy device=home-1-battery" in run.stdout, run.stdout[-3000:]
    assert " DEBUG gridctl." in run.stdout
    # ... and none of pymodbus's request/response dumps reached stdout or stderr.
    assert frame_dumps(run.stdout + run.stderr) == []


async def test_commission_scan_writes_no_modbus_frames(sunspec_factory):
    emu = await sunspec_factory("pv_inverter")
    child = await asyncio.create_subprocess_exec(
        *CLI, "commission", "scan", f"127.0.0.1:{emu.port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, err.decode()[-3000:]
    assert "SunSpec base 40000" in out.decode()
    assert frame_dumps(out.decode() + err.decode()) == []
