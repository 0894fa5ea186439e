"""Where sweep cases run: a ``concurrent.futures`` executor chosen by a scheduler spec.

* ``serial``: in this process, one case after another;
* ``process`` or ``process:N``: a local :class:`~concurrent.futures.ProcessPoolExecutor`;
* ``local:N``: a Dask ``LocalCluster(processes=True, n_workers=N, threads_per_worker=1)``;
* ``tcp://host:8786`` or ``tls://host:8786``: an existing Dask scheduler (its workers must run
  the same gridctl). TLS settings come from :class:`DaskTls` or Dask's own configuration
  (``distributed.comm.tls.*``, e.g. ``DASK_DISTRIBUTED__COMM__TLS__CA_FILE``).

Dask (``distributed``) is the optional extra ``gridctl[dask]``; it is imported only for the
Dask schedulers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DaskTls", "SchedulerSpec", "SerialExecutor", "open_executor", "parse_scheduler"]

_SPEC = re.compile(r"^(serial|process|local)(?::(\d+))?$")


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed ``--scheduler``: the kind, the local worker count, or a Dask address."""

    kind: Literal["serial", "process", "local", "remote"]
    workers: int = 1
    address: str | None = None

    @property
    def in_flight(self) -> int:
        """Cases to keep submitted at once: one each for the serial executor's run-at-submit,
        twice the workers locally (no worker waits), 64 on a remote cluster of unknown size."""
        return {"serial": 1, "remote": 64}.get(self.kind, 2 * self.workers)

    def __str__(self) -> str:
        return self.address if self.kind == "remote" else f"{self.kind}:{self.workers}"


@dataclass(frozen=True)
class DaskTls:
    """Mutual TLS towards a ``tls://`` scheduler: CA, client certificate and key (PEM)."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def parse_scheduler(text: str, workers: int) -> SchedulerSpec:
    """Parse ``serial | process[:N] | local[:N] | tcp://host:port | tls://host:port``; ``N``
    defaults to ``workers``. Raises ValueError (one line) on anything else."""
    text = text.strip()
    if re.match(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$", text):
        return SchedulerSpec("remote", address=text)
    match = _SPEC.match(text)
    if not match:
        raise ValueError(f"--scheduler '{text}': use serial, process:N, local:N, "
                         "tcp://host:8786 or tls://host:8786")
    count = int(match.group(2)) if match.group(2) else workers
    if not 1 <= count <= 256:
        raise ValueError(f"--scheduler '{text}': N must be 1 to 256")
    kind = match.group(1)
    return SchedulerSpec(kind, workers=1 if kind == "serial" else count)  # type: ignore[arg-type]


class SerialExecutor(Executor):
    """Runs each submitted call at once, in this process (the reference for the others)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:  # noqa: ANN001 - Executor's signature
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            future.set_exception(exc)
        return future


@contextmanager
def open_executor(spec: SchedulerSpec, tls: DaskTls | None = None) -> Iterator[Executor]:
    """An executor for ``spec``, shut down (and a local Dask cluster closed) on exit.

    Raises ImportError when a Dask scheduler is asked for without ``distributed`` installed,
    OSError/TimeoutError when a remote scheduler cannot be reached.
    """
    if spec.kind == "serial":
        yield SerialExecutor()
    elif spec.kind == "process":
        pool = ProcessPoolExecutor(max_workers=spec.workers)
        try:
            yield pool
        finally:  # on Ctrl-C, cases not yet started are dropped (they run again next time)
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with _dask_client(spec, tls) as client:
            yield client.get_executor(pure=False)


@contextmanager
def _dask_client(spec: SchedulerSpec, tls: DaskTls | None):  # noqa: ANN202 - distributed.Client
    try:
        from distributed import Client, LocalCluster
        from distributed.security import Security
    except ImportError:
        raise ImportError("Dask schedulers need the optional extra: pip install 'gridctl[dask]'") from None
    if spec.kind == "local":
        with LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.WARNING) as cluster, \
                Client(cluster) as client:
            yield client
        return
    security = None
    if tls is not None:
        security = Security(tls_ca_file=str(tls.ca_file), tls_client_cert=str(tls.cert_file),
                            tls_client_key=str(tls.key_file), require_encryption=True)
    try:
        client = Client(spec.address, security=security, timeout="10s")
    except (OSError, TimeoutError):
        raise
    except Exception as exc:  # noqa: BLE001 - distributed raises many kinds; the CLI wants one line
        raise OSError(f"cannot connect: {type(exc).__name__}: {exc}") from None
    with client:
        yield client
