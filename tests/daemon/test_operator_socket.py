"""The operator socket: JSON lines over a real Unix socket, file-permission access control."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gridctl.controller.types import Mode
from gridctl.daemon.lifecycle.operator import (
    AlreadyRunningError,
    OperatorClientError,
    ProtocolError,
    parse_request,
    request,
)

from .test_cycle_table import run_cycles


def raw(path: Path, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(line)
        return json.loads(sock.makefile("rb").readline())


def test_requests_are_validated_with_one_line_errors():
    assert parse_request(b'{"cmd": "status"}').cmd == "status"
    command = parse_request(b'{"cmd": "reserve", "hours_h": 72, "until": "2026-09-01T06:00+09:00"}')
    assert command.hours_h == 72.0 and command.at.isoformat() == "2026-08-31T21:00:00+00:00"
    for line, needle in [(b"nonsense", "not a JSON object"), (b'{"cmd": "reboot"}', "unknown command"),
                         (b'{"cmd": "reserve", "hours_h": -1, "until": "2026-09-01T00:00Z"}', "hours_h"),
                         (b'{"cmd": "reserve", "hours_h": 5, "until": "2026-09-01T00:00"}', "zone offset"),
                         (b'{"cmd": "island", "at": "tomorrow"}', "not an ISO 8601"),
                         (b"[" * 5000 + b"]" * 5000, "nested too deeply")]:
        with pytest.raises(ProtocolError, match=needle):
            parse_request(line)


async def test_socket_mode_status_and_commands(make_daemon, plant, tmp_path):
    path = tmp_path / "run" / "gridctl.sock"
    daemon, _ledger = make_daemon(socket_path=path)
    task = asyncio.create_task(daemon.run(duration_s=None))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if path.exists() and daemon.cycle.count >= 3:
            break
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o660 and stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750
        status = await asyncio.to_thread(request, path, {"cmd": "status"})
        assert status["mode"] == "grid_connected" and status["cycles"] >= 3
        assert set(status["devices"]) == {d.id for _n, d in daemon.parts.site.all_devices()}
        now = plant.clock.now()
        until = (now.replace(microsecond=0) + __import__("datetime").timedelta(days=2)).isoformat()
        answer = await asyncio.to_thread(
            request, path, {"cmd": "reserve", "hours_h": 72, "until": until})
        assert answer["reserve"]["hours_h"] == 72
        assert daemon.cycle.state.reserve_request.hours_h == 72
        bad = await asyncio.to_thread(raw, path, b'{"cmd": "reserve", "hours_h": 9}\n')
        assert bad["ok"] is False and "until" in bad["error"]
        await asyncio.to_thread(request, path, {"cmd": "island", "at": now.isoformat()})
        for _ in range(100):
            await asyncio.sleep(0.01)
        assert daemon.cycle.state.mode in (Mode.PLANNED_ISLANDING, Mode.ISLANDED)
        await asyncio.to_thread(request, path, {"cmd": "reconnect"})
        assert all(w.end_utc <= plant.clock.now() for w in daemon.cycle.state.outage_windows)
        twin, _twin_ledger = make_daemon(socket_path=path)
        with pytest.raises(AlreadyRunningError):  # a second controller must not start
            await twin.run(duration_s=1.0)
        assert path.exists()  # and must not have stolen the first one's socket
    finally:
        daemon.stop()
        await task
    assert not path.exists()  # removed at shutdown
    with pytest.raises(OperatorClientError, match="no daemon socket"):
        request(path, {"cmd": "status"})


def connect_as_nobody(path: Path) -> int:
    """Fork, drop to uid/gid 65534 (nobody) and try to connect: 13 refused, 0 connected.

    Needs root to switch users (the CI machines run the suite as root).
    """
    pid = os.fork()
    if pid == 0:  # child: no exec, so the interpreter need not be readable by nobody
        code = 2
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(str(path))
            code = 0
        except PermissionError:
            code = 13
        finally:
            os._exit(code)
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


async def test_other_users_are_refused_by_file_permissions(make_daemon, tmp_path):
    if os.geteuid() != 0:  # cannot switch users: show the kernel gates on the socket's mode
        await _refused_without_write_permission(make_daemon, tmp_path)
        return
    base = Path(tempfile.mkdtemp(prefix="gridctl-sock-", dir="/tmp"))
    base.chmod(0o755)  # traversable by anyone: only the daemon's own modes protect the socket
    path = base / "run" / "gridctl.sock"
    daemon, _ledger = make_daemon(socket_path=path)
    task = asyncio.create_task(daemon.run(duration_s=None))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if path.exists():
            break
    try:
        refused = connect_as_nobody(path)
        path.parent.chmod(0o755)
        os.chmod(path, 0o666)  # widened on purpose: now the same user gets in
        allowed = connect_as_nobody(path)
    finally:
        daemon.stop()
        await task
        shutil.rmtree(base, ignore_errors=True)
    assert (refused, allowed) == (13, 0)


async def _refused_without_write_permission(make_daemon, tmp_path) -> None:
    path = tmp_path / "run" / "gridctl.sock"
    daemon, _ledger = make_daemon(socket_path=path)
    task = asyncio.create_task(daemon.run(duration_s=None))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if path.exists():
            break
    try:
        os.chmod(path, 0o000)
        with pytest.raises(OperatorClientError, match="permission denied"):
            await asyncio.to_thread(request, path, {"cmd": "status"})
        os.chmod(path, 0o660)
        assert (await asyncio.to_thread(request, path, {"cmd": "status"}))["cycles"] >= 0
    finally:
        daemon.stop()
        await task


async def _running(make_daemon, path, cycles: int):
    """A daemon with its operator socket at ``path``, run until it has made ``cycles`` cycles."""
    daemon, _ledger = make_daemon(socket_path=path)
    task = asyncio.create_task(daemon.run(duration_s=None))
    for _ in range(300):
        await asyncio.sleep(0.01)
        if path.exists() and daemon.cycle.count >= cycles:
            break
    return daemon, task


async def test_cli_status_talks_to_the_running_daemon(make_daemon, tmp_path):
    path = tmp_path / "gridctl.sock"
    daemon, task = await _running(make_daemon, path, cycles=2)
    cli = [sys.executable, "-c", "from gridctl.cli import main; main()"]
    try:
        shown = await asyncio.to_thread(subprocess.run, cli + ["status", "--socket", str(path)],
                                        capture_output=True, text=True, timeout=60)
        bad = await asyncio.to_thread(
            subprocess.run, cli + ["reserve", "--hours", "5", "--until", "soon", "--socket", str(path)],
            capture_output=True, text=True, timeout=60)
    finally:
        daemon.stop()
        await task
    assert shown.returncode == 0, shown.stderr
    assert "mode grid_connected" in shown.stdout and "devices: " in shown.stdout
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "--until" in bad.stderr
    gone = subprocess.run(cli + ["status", "--socket", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "is 'gridctl run' running" in gone.stderr


MALFORMED = [
    (b'{"cmd": "island", "at": "0001-01-01T00:00:00+14:00"}', "at: '0001-01-01T00:00:00+14:00' is out of range"),
    (b'{"cmd": "island", "at": "9999-12-31T23:59:59-14:00"}', "at: '9999-12-31T23:59:59-14:00' is out of range"),
    (b'{"cmd": "island", "at": "9999-12-31T23:59:59Z"}', "is out of range"),
    (b'{"cmd": "reserve", "hours_h": 5, "until": "0001-01-01T00:00+14:00"}', "until: '0001-01-01"),
    (b'{"cmd": "island", "at": "2026-09-01T03:00:00"}', "needs a zone offset"),
    (b"[" * 20_000 + b"]" * 20_000, "nested too deeply"),
    (b'{"a": ' * 5_000 + b"1" + b"}" * 5_000, "nested too deeply"),
    (b"x" * 200_000, "longer than 65536 bytes"),
    (b'{"cmd": "st\xff\xfeatus"}', "not a JSON object"),
    (b"\xc3\x28\xa0\xa1", "not a JSON object"),
    (b"1" * 6000, "not a JSON object"),
    (b'{"cmd": "reboot"}', "cmd: unknown command 'reboot'"),
    (b'{"cmd": ["status"]}', "cmd: unknown command ['status']"),
    (b'{"cmd": {"x": 1}}', "unknown command"),
    (b'{"cmd": "reserve", "hours_h": "72", "until": "2026-09-01T00:00Z"}', "hours_h: must be a number"),
    (b'{"cmd": "reserve", "hours_h": 5, "until": 5}', "until: 5 is not an ISO 8601 time"),
    (b'{"cmd": "island", "at": null}', "at: None is not an ISO 8601 time"),
    (b'["cmd", "status"]', "not a JSON object"),
    (b"", "not a JSON object"),
]


async def test_malformed_requests_get_one_line_answers_and_the_connection_survives(make_daemon, tmp_path):
    """Every bad request on ONE connection gets its one-line error; status still answers after."""
    path = tmp_path / "gridctl.sock"
    daemon, task = await _running(make_daemon, path, cycles=1)
    try:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
        for line, needle in MALFORMED:
            writer.write(line + b"\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), 10)
            assert answer.endswith(b"\n") and answer.count(b"\n") == 1, (line[:40], answer)
            decoded = json.loads(answer)
            assert decoded["ok"] is False and needle in decoded["error"], (line[:40], decoded)
            assert len(decoded["error"]) < 200, decoded
        writer.write(b'{"cmd": "status"}\n')
        await writer.drain()
        status = json.loads(await asyncio.wait_for(reader.readline(), 10))
        assert status["ok"] is True and status["result"]["cycles"] >= 1
        writer.close()
        assert daemon.cycle.state.outage_windows == ()  # no bad time reached the controller
    finally:
        daemon.stop()
        await task


async def test_idle_connections_time_out_and_the_cap_evicts_the_longest_idle(tmp_path):
    """Cap 4, idle timeout 1 s: ten idle clients never hold more than four connections, a fresh
    client always gets its answer, the longest idle is told why it is closed, and a silent
    connection is closed after the timeout."""
    from gridctl.daemon.lifecycle.operator import OperatorServer

    async def handler(command):
        return {"cmd": command.cmd}

    server = OperatorServer(tmp_path / "op.sock", handler, max_connections=4, idle_timeout_s=1.0)
    await server.start()
    try:
        idle = [await asyncio.open_unix_connection(str(server.path)) for _ in range(10)]
        await asyncio.sleep(0.1)
        assert server.connections <= 4
        reader, writer = await asyncio.open_unix_connection(str(server.path))
        writer.write(b'{"cmd": "status"}\n')
        assert json.loads(await asyncio.wait_for(reader.readline(), 5)) == {
            "ok": True, "result": {"cmd": "status"}}
        first = json.loads(await asyncio.wait_for(idle[0][0].readline(), 5))
        assert first["ok"] is False and "idle the longest" in first["error"]
        assert await asyncio.wait_for(idle[0][0].read(), 5) == b""  # and closed
        last = json.loads(await asyncio.wait_for(idle[-1][0].readline(), 5))
        assert "no request for 1 s" in last["error"]  # the newest idle one timed out
        assert await asyncio.wait_for(idle[-1][0].read(), 5) == b""
        for _r, w in idle + [(reader, writer)]:
            w.close()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if server.connections == 0:
                break
        assert server.connections == 0
    finally:
        await server.close()
