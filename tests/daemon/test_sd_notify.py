"""sd_notify over a real datagram socket: READY after the first cycle, WATCHDOG only when healthy."""

from __future__ import annotations

import socket

from gridctl.daemon.lifecycle.notify import Notifier, watchdog_period_s

from .test_cycle_table import run_cycles


def receiver(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.setblocking(False)
    return sock, str(path)


def drain(sock) -> list[dict[str, str]]:
    out = []
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return out
        out.append(dict(line.split("=", 1) for line in data.decode().splitlines()))


def test_abstract_and_path_addresses_and_disabled(tmp_path):
    sock, path = receiver(tmp_path)
    assert Notifier(path).ready("up") and drain(sock) == [{"READY": "1", "STATUS": "up"}]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind("\0gridctl-test-notify")
    abstract.setblocking(False)
    assert Notifier("@gridctl-test-notify").watchdog()
    assert drain(abstract) == [{"WATCHDOG": "1"}]
    assert not Notifier("").enabled and not Notifier("").watchdog()
    assert not Notifier(str(tmp_path / "missing.sock")).status("x")  # logged, never raised


def test_watchdog_period_is_half_the_interval(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_period_s() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process is the watched one
    assert watchdog_period_s() is None


async def test_ready_once_and_watchdog_only_after_healthy_cycles(make_daemon, tmp_path, monkeypatch):
    sock, path = receiver(tmp_path)
    daemon, _ledger = make_daemon(notifier=Notifier(path))
    reports, messages = [], []

    def on_cycle(report):  # drain as systemd would: the datagram queue is short
        reports.append(report)
        messages.extend(drain(sock))

    await daemon.run(duration_s=5.0, on_cycle=on_cycle)
    messages.extend(drain(sock))
    assert sum(1 for m in messages if m.get("READY") == "1") == 1
    kicks = sum(1 for m in messages if m.get("WATCHDOG") == "1")
    assert kicks == sum(1 for r in reports if r.healthy) and kicks >= len(reports) - 1
    assert messages[-1].get("STOPPING") is None  # stopped by duration, not by a signal

    def broken(*_a):
        raise ZeroDivisionError("decide broke")

    import gridctl.controller.loop

    monkeypatch.setattr(gridctl.controller.loop, "decide", broken)  # run_cycle's decision
    sick, _l2 = make_daemon(notifier=Notifier(path))
    drain(sock)
    await run_cycles(sick, 5)
    assert not [m for m in drain(sock) if m.get("WATCHDOG")]
