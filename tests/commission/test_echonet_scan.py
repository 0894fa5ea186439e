"""``gridctl commission scan --echonet`` against real ECHONET Lite nodes on loopback (UDP).

The nodes are the emulator's (``sim.emulators.echonet_node``) on 127.0.0.x with free ports;
the CLI runs as a real subprocess and asks them by unicast ("force polling").
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from drivers.echonet.frame import Eoj
from sim.emulators.echonet_node import EchonetNode, EmulatedObject, EmulatedProperty

CLI = "from gridctl.cli import main; main()"


def _object(class_code: int, instance: int, epcs: dict[int, bytes], settable: set[int] = frozenset(),
            announced: set[int] = frozenset()) -> EmulatedObject:
    props = {epc: EmulatedProperty(getter=(lambda v=value: v), setter=(lambda _v: True) if epc in settable else None,
                                   announce=epc in announced)
             for epc, value in epcs.items()}
    return EmulatedObject(Eoj.of(class_code, instance), props)


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CLI, "commission", "scan", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_scan_lists_instances_maker_codes_and_property_maps() -> None:
    battery = _object(0x027D, 1, {0x80: b"\x30", 0xD3: b"\x00\x00\x01\xf4", 0xE4: b"\x32", 0x8A: b"\x00\x00\x0b"},
                      settable={0x80}, announced={0x80})
    switch = _object(0x05FD, 2, {0x80: b"\x31"}, settable={0x80})
    meter = _object(0x0288, 1, {0x80: b"\x30", 0xE7: b"\x00\x00\x01\x00"})
    async with EchonetNode("127.0.0.31", 0, [battery, switch], maker_code=0x000077) as home, \
            EchonetNode("127.0.0.32", 0, [meter], maker_code=0x000016) as smart_meter:
        meter_port = smart_meter.port
        code, out, err = await _cli("--echonet", f"127.0.0.31:{home.port}", f"127.0.0.32:{meter_port}",
                                    "--json", "--timeout", "1")
    assert code == 0, err
    rows = {(r["host"], r["eoj"]): r for r in json.loads(out)}
    assert set(rows) == {("127.0.0.31", "0x027D01"), ("127.0.0.31", "0x05FD02"), ("127.0.0.32", "0x028801")}
    bat = rows[("127.0.0.31", "0x027D01")]
    assert bat["maker_code"] == "0x00000B"  # the object's own 0x8A wins over the node's
    assert {"0x80", "0xD3", "0xE4", "0x9F"} <= set(bat["get"])
    assert bat["set"] == ["0x80"] and bat["inf"] == ["0x80"]
    assert rows[("127.0.0.31", "0x05FD02")]["maker_code"] == "0x000077"
    assert rows[("127.0.0.31", "0x05FD02")]["set"] == ["0x80"]
    assert rows[("127.0.0.32", "0x028801")]["maker_code"] == "0x000016"
    assert rows[("127.0.0.32", "0x028801")]["port"] == meter_port


async def test_scan_table_and_a_silent_node_is_one_line_exit_1() -> None:
    switch = _object(0x05FD, 1, {0x80: b"\x30"}, settable={0x80})
    async with EchonetNode("127.0.0.33", 0, [switch]) as node:
        quiet = EchonetNode("127.0.0.34", 0, [switch])
        await quiet.start()
        quiet_port = quiet.port
        await quiet.stop()  # nobody answers there any more
        code, out, err = await _cli("--echonet", f"127.0.0.33:{node.port}", f"127.0.0.34:{quiet_port}",
                                    "--timeout", "0.5")
    assert code == 1
    assert "0x05FD01" in out and "127.0.0.33" in out
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"127.0.0.34:{quiet_port}: no ECHONET Lite answer within 0.5 s (node off, wrong "
                     "address, or UDP 3610 blocked?)"]
    assert "Traceback" not in err


async def test_scan_usage_errors_are_one_line_exit_2() -> None:
    code, _out, err = await _cli("--echonet")
    assert code == 2 and err.strip() == "scan --echonet: give node addresses (HOST[:PORT]) or --multicast"
    code, _out, err = await _cli("--echonet", "127.0.0.35:99999")
    assert code == 2 and "bad port '99999'" in err and "Traceback" not in err
