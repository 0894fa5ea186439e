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
                         (b"[" * 5000 + b"]" * 5000, "not a JSON object")]:
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


async def test_cli_status_talks_to_the_running_daemon(make_daemon, tmp_path):
    path = tmp_path / "gridctl.sock"
    daemon, _ledger = make_daemon(socket_path=path)
    task = asyncio.create_task(daemon.run(duration_s=None))
    for _ in range(300):
        await asyncio.sleep(0.01)
        if path.exists() and daemon.cycle.count >= 2:
            break
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
