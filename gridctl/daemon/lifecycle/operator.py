"""Operator protocol: JSON lines over a local Unix socket, the only control path into the daemon.

Access control is the file system: the socket is created with mode 0660 inside a directory
the daemon owns (``RuntimeDirectory=gridctl`` under systemd, mode 0750), so only the daemon's
user and members of its group can connect. Nothing listens on a network port.

One request per line, one response per line::

    {"cmd": "status"}
    {"cmd": "reserve", "hours_h": 72, "until": "2026-09-01T00:00:00+09:00"}
    {"cmd": "island", "at": "2026-09-01T03:00:00Z"}
    {"cmd": "reconnect"}
    -> {"ok": true, "result": {...}}  or  {"ok": false, "error": "one line"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Largest request line accepted [bytes]; a longer line is a protocol error.
MAX_LINE_BYTES = 64 * 1024
COMMANDS = ("status", "reserve", "island", "reconnect")


class AlreadyRunningError(RuntimeError):
    """Another daemon answers on the socket: two controllers must never drive one block."""


class ProtocolError(ValueError):
    """A request that cannot be understood; the message is one line for the operator."""


@dataclass(frozen=True)
class Command:
    """A validated operator command.

    Attributes
    ----------
    cmd : str
        One of ``status``, ``reserve``, ``island``, ``reconnect``.
    hours_h : float or None
        Reserve to hold [h] (``reserve`` only).
    at : datetime or None
        UTC time: end of the raised reserve (``reserve``) or islanding time (``island``).
    """

    cmd: str
    hours_h: float | None = None
    at: datetime | None = None


def parse_time(text: str, what: str) -> datetime:
    """Parse an ISO 8601 time with a zone offset (or ``now``) into UTC."""
    if text == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what}: '{text}' is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ProtocolError(f"{what}: '{text}' needs a zone offset (e.g. +09:00 or Z)")
    return value.astimezone(UTC)


def parse_request(line: bytes) -> Command:
    """Validate one request line into a :class:`Command`."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ProtocolError("request is not a JSON object") from None
    if not isinstance(data, dict):
        raise ProtocolError("request is not a JSON object")
    cmd = data.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"cmd: unknown command {cmd!r} (expected one of {', '.join(COMMANDS)})")
    if cmd == "reserve":
        hours = data.get("hours_h")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 240:
            raise ProtocolError("hours_h: must be a number of hours within 0..240")
        return Command("reserve", hours_h=float(hours), at=parse_time(data.get("until", ""), "until"))
    if cmd == "island":
        return Command("island", at=parse_time(data.get("at", "now"), "at"))
    return Command(cmd)


Handler = Callable[[Command], Awaitable[dict[str, Any]]]


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[1]
    except (OSError, AttributeError):
        return None


class OperatorServer:
    """Serves operator commands on a Unix socket.

    Parameters
    ----------
    path : Path
        Socket file; its directory is created with mode 0750 if missing.
    handler : callable
        ``async handler(Command) -> dict``; exceptions become ``{"ok": false}`` answers.
    """

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = Path(path)
        self._handler = handler
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        if self.path.exists():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.path))
                except OSError:
                    pass  # nobody answers: a stale socket from a crashed run
                else:
                    raise AlreadyRunningError(f"{self.path}: another gridctl daemon is running")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o117)  # the socket is born 0660: no window with wider rights
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_LINE_BYTES)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        log.info("operator socket listening path=%s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await _answer(writer, {"ok": False, "error": "request line too long"})
                    break
                if not line:
                    break
                await _answer(writer, await self._dispatch(line, uid))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, uid: int | None) -> dict[str, Any]:
        try:
            command = parse_request(line)
        except ProtocolError as exc:
            return {"ok": False, "error": str(exc)}
        if command.cmd != "status":
            log.info("operator command cmd=%s uid=%s hours_h=%s at=%s",
                     command.cmd, uid, command.hours_h, command.at)
        try:
            return {"ok": True, "result": await self._handler(command)}
        except ProtocolError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # an operator request must never take the daemon down
            log.exception("operator command failed cmd=%s", command.cmd)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def _answer(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    writer.write(json.dumps(payload, default=str).encode() + b"\n")
    await writer.drain()


class OperatorClientError(RuntimeError):
    """The daemon could not be reached or refused the request (one-line message)."""


def request(path: Path, payload: dict[str, Any], timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one request to the daemon and return its ``result`` (blocking; for the CLI)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            buffer = b""
            while not buffer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
    except FileNotFoundError:
        raise OperatorClientError(f"{path}: no daemon socket (is 'gridctl run' running?)") from None
    except PermissionError:
        raise OperatorClientError(
            f"{path}: permission denied (run as the daemon's user or a member of its group)") from None
    except ConnectionRefusedError:
        raise OperatorClientError(f"{path}: connection refused (daemon not running?)") from None
    except (TimeoutError, OSError) as exc:
        raise OperatorClientError(f"{path}: {exc}") from None
    try:
        answer = json.loads(buffer)
    except json.JSONDecodeError:
        raise OperatorClientError(f"{path}: the daemon sent no valid answer") from None
    if not answer.get("ok"):
        raise OperatorClientError(str(answer.get("error", "request refused")))
    return answer.get("result", {})
