"""systemd notification protocol (sd_notify): READY, STATUS, WATCHDOG, STOPPING.

A datagram of ``KEY=value`` lines sent to the socket named by ``$NOTIFY_SOCKET`` (a path, or an
abstract socket when it starts with ``@``). Outside systemd the variable is unset and every
call is a no-op. Failures to send are logged, never raised: a watchdog hiccup must not stop
control.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams.

    Parameters
    ----------
    address : str or None
        Socket address; defaults to ``$NOTIFY_SOCKET``. None or empty disables notification.
    """

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._address: str | bytes | None = None
        if address:
            self._address = ("\0" + address[1:]) if address.startswith("@") else address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines; True if the datagram left."""
        if self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)  # a full queue drops a kick, never stalls control
            self._sock.sendto(message, self._address)
        except OSError as exc:
            log.warning("sd_notify failed error=%s", exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY="1", STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG="1")

    def stopping(self, status: str) -> bool:
        return self.send(STOPPING="1", STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_period_s() -> float | None:
    """Half the systemd watchdog interval [s] when this process is the watched one, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
