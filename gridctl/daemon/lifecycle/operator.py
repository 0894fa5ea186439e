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

Every malformed request (bad JSON, too deep, too long, not UTF-8, a time out of range, a wrong
type) gets a one-line ``{"ok": false}`` answer and the connection stays usable. Local processes
must not be able to starve the daemon of file descriptors: at most :data:`MAX_CONNECTIONS`
connections are served; a new one beyond that closes the connection idle the longest (an
operator typing ``gridctl status`` now always gets in, while idle holders are what a stuck or
hostile client leaves behind), and a connection without a complete request for
:data:`IDLE_TIMEOUT_S` is closed. Repeated log lines are rate-limited
(:mod:`~gridctl.daemon.lifecycle.ratelog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridctl.daemon.lifecycle.guard import AlreadyRunningError
from gridctl.daemon.lifecycle.ratelog import limit_repeats

__all__ = ["AlreadyRunningError", "Command", "OperatorClientError", "OperatorServer",
           "ProtocolError", "parse_request", "parse_time", "request"]

log = logging.getLogger(__name__)

#: Largest request line accepted [bytes]; a longer line is a protocol error.
MAX_LINE_BYTES = 64 * 1024
#: Operator connections served at once; one more closes the connection idle the longest.
MAX_CONNECTIONS = 64
#: A connection that sends no complete request for this long is closed [s].
IDLE_TIMEOUT_S = 30.0
#: Listen backlog, which is also how many connections asyncio accepts in one loop turn before
#: the cap is applied: the daemon's operator descriptors peak near MAX_CONNECTIONS + this.
ACCEPT_BACKLOG = 16
#: Operator times outside [EARLIEST_UTC, LATEST_UTC) are refused (UTC arithmetic stays in range).
EARLIEST_UTC = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_UTC = datetime(2100, 1, 1, tzinfo=UTC)
COMMANDS = ("status", "reserve", "island", "reconnect")
#: Longest piece of a request quoted back in an error [characters].
_QUOTE_CHARS = 60


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


def _quote(value: Any) -> str:
    """``repr`` of a piece of a request, shortened: errors stay one short line."""
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[:_QUOTE_CHARS] + "..."


def parse_time(text: str, what: str) -> datetime:
    """Parse an ISO 8601 time with a zone offset (or ``now``) into UTC within 2000..2099."""
    if text == "now":
        return datetime.now(UTC)
    if not isinstance(text, str):
        raise ProtocolError(f"{what}: {_quote(text)} is not an ISO 8601 time (a string)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"{what}: {_quote(text)} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ProtocolError(f"{what}: {_quote(text)} needs a zone offset (e.g. +09:00 or Z)")
    try:  # compared before conversion: year 1 at +14:00 has no UTC datetime
        inside = EARLIEST_UTC <= value < LATEST_UTC
    except OverflowError:
        inside = False
    if not inside:
        raise ProtocolError(f"{what}: {_quote(text)} is out of range (years 2000 to 2099)")
    return value.astimezone(UTC)


def parse_request(line: bytes) -> Command:
    """Validate one request line into a :class:`Command`."""
    try:
        data = json.loads(line)
    except RecursionError:
        raise ProtocolError("request is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an integer of 5,000 digits
        raise ProtocolError("request is not a JSON object (UTF-8, one line)") from None
    if not isinstance(data, dict):
        raise ProtocolError("request is not a JSON object")
    cmd = data.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise ProtocolError(
            f"cmd: unknown command {_quote(cmd)} (expected one of {', '.join(COMMANDS)})")
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


@dataclass(eq=False)
class _Connection:
    """One served connection: idle (waiting for a request) since ``idle_since_s``, or busy."""

    writer: asyncio.StreamWriter
    idle_since_s: float
    busy: bool = False


class _TooLong:
    """A request line longer than :data:`MAX_LINE_BYTES` (already skipped up to its end)."""


TOO_LONG = _TooLong()


class OperatorServer:
    """Serves operator commands on a Unix socket.

    Parameters
    ----------
    path : Path
        Socket file; its directory is created with mode 0750 if missing.
    handler : callable
        ``async handler(Command) -> dict``; exceptions become ``{"ok": false}`` answers.
    max_connections : int
        Connections served at once; a new one beyond it closes the longest-idle one.
    idle_timeout_s : float
        A connection without a complete request for this long is closed [s].
    """

    def __init__(self, path: Path, handler: Handler, max_connections: int = MAX_CONNECTIONS,
                 idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._handler = handler
        self.max_connections, self.idle_timeout_s = max_connections, idle_timeout_s
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._connections)

    async def start(self) -> None:
        limit_repeats(log, logging.getLogger("asyncio"))  # accept() under EMFILE floods the log
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
                self._serve, path=str(self.path), limit=MAX_LINE_BYTES, backlog=ACCEPT_BACKLOG)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        log.info("operator socket listening path=%s max_connections=%d idle_timeout_s=%g",
                 self.path, self.max_connections, self.idle_timeout_s)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _admit(self, writer: asyncio.StreamWriter) -> _Connection | None:
        """Make room for a new connection, or None when every served one is busy."""
        if len(self._connections) >= self.max_connections:
            idle = [c for c in self._connections if not c.busy]
            if not idle:
                log.warning("operator connections all busy, refusing a new one max=%d",
                            self.max_connections)
                return None
            oldest = min(idle, key=lambda c: c.idle_since_s)
            log.warning("operator connections at the cap, closing the longest idle max=%d",
                        self.max_connections)
            _say(oldest.writer, {"ok": False, "error": "closed: too many operator connections "
                                 "and this one was idle the longest"})
            oldest.writer.close()
            self._connections.discard(oldest)
        connection = _Connection(writer, time.monotonic())
        self._connections.add(connection)
        return connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self._admit(writer)
        try:
            if connection is None:
                await _answer(writer, {"ok": False, "error": f"too many operator connections "
                                       f"({self.max_connections}, all busy); try again"})
                return
            await self._requests(reader, connection, _peer_uid(writer))
        except (ConnectionError, OSError):
            pass  # the client went away or timed out: nothing to answer
        except Exception as exc:  # a connection's failure must not surface as a task traceback
            log.error("operator connection failed error=%s: %s", type(exc).__name__, exc)
        finally:
            if connection is not None:
                self._connections.discard(connection)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _requests(self, reader: asyncio.StreamReader, connection: _Connection,
                        uid: int | None) -> None:
        """Answer requests until EOF, idle timeout or eviction; one answer per request.

        Reading a request and writing its answer each get ``idle_timeout_s``: neither a silent
        client nor one that never reads its answers holds a connection longer.
        """
        writer = connection.writer
        while not writer.is_closing():
            connection.busy, connection.idle_since_s = False, time.monotonic()
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    line = await _read_request(reader)
            except TimeoutError:
                _say(writer, {"ok": False, "error": f"no request for {self.idle_timeout_s:g} s: "
                              "closing the connection"})
                return
            if line is None:
                return
            connection.busy = True
            if line is TOO_LONG:
                answer = {"ok": False, "error": f"request line longer than {MAX_LINE_BYTES} bytes"}
            else:
                answer = await self._dispatch(line, uid)
            async with asyncio.timeout(self.idle_timeout_s):
                await _answer(writer, answer)

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


async def _read_request(reader: asyncio.StreamReader) -> bytes | _TooLong | None:
    """The next request line; :data:`TOO_LONG` (its bytes skipped); None at end of stream."""
    too_long = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:  # end of stream: a last line without newline
            return exc.partial if exc.partial.strip() and not too_long else None
        except asyncio.LimitOverrunError as exc:  # drop what is buffered, keep looking for \n
            await reader.readexactly(exc.consumed)
            too_long = True
            continue
        return TOO_LONG if too_long else line


def _say(writer: asyncio.StreamWriter, payload: dict[str, Any]) -> None:
    """Write one answer line without waiting (to a connection about to be closed)."""
    with contextlib.suppress(Exception):
        writer.write(json.dumps(payload, default=str).encode() + b"\n")


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
