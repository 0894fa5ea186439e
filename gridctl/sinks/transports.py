"""Transports to InfluxDB: the 1.x ``/write`` API and the 2.x ``/api/v2/write`` API.

A transport sends a batch of line-protocol lines (nanosecond precision) and returns only when
the server answered HTTP 204; anything else raises :class:`SinkError` (``transient`` tells the
shipper whether waiting can help: connection errors, 5xx, 429 and 503 are transient; other 4xx
mean the batch or the credentials are wrong).
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from typing import Protocol

from gridctl.config.policy import InfluxV1, InfluxV2
from gridctl.credentials import read_secret


class SinkError(RuntimeError):
    """A write was not acknowledged with HTTP 204."""

    def __init__(self, message: str, transient: bool = True, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class Transport(Protocol):
    """Sends one batch of line protocol; returns only after HTTP 204."""

    description: str

    def write(self, lines: list[str]) -> None: ...


def _transient(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class V1Transport:
    """InfluxDB 1.x: ``POST {url}/write?db=...&rp=...&precision=ns`` (stdlib HTTP client).

    Parameters
    ----------
    url : str
        Server base URL, e.g. ``http://127.0.0.1:8086``.
    database : str
        Target database.
    retention_policy : str, optional
    username, password : str, optional
        Credentials, sent in an ``Authorization: Basic`` header (which the 1.x API accepts),
        never as ``u``/``p`` query parameters: a query string ends up in proxy and access logs.
    timeout_s : float
        Socket timeout [s].
    """

    def __init__(
        self, url: str, database: str, retention_policy: str | None = None,
        username: str | None = None, password: str | None = None, timeout_s: float = 10.0,
    ) -> None:
        query = {"db": database, "precision": "ns"}
        if retention_policy:
            query["rp"] = retention_policy
        self._authorization = _basic_authorization(username, password) if username else None
        self._endpoint = f"{url.rstrip('/')}/write?{urllib.parse.urlencode(query)}"
        self._timeout_s = timeout_s
        self.description = f"influxdb v1 {url} db={database}"

    def write(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        request = urllib.request.Request(self._endpoint, data=body, method="POST")
        request.add_header("Content-Type", "text/plain; charset=utf-8")
        if self._authorization is not None:
            request.add_header("Authorization", self._authorization)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").strip()
            raise SinkError(f"{self.description}: HTTP {exc.code}: {detail}", _transient(exc.code), exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SinkError(f"{self.description}: {reason}") from None
        if status != 204:
            raise SinkError(f"{self.description}: HTTP {status} instead of 204", _transient(status), status)


def _basic_authorization(username: str, password: str | None) -> str:
    """HTTP Basic ``Authorization`` header value (RFC 7617, UTF-8)."""
    pair = f"{username}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class V2Transport:
    """InfluxDB 2.x: ``POST {url}/api/v2/write?org=...&bucket=...`` via ``influxdb-client``.

    Uses the client's ``WriteService.post_write_with_http_info`` so the HTTP status is checked
    to be 204 here rather than trusted.
    """

    def __init__(self, url: str, org: str, bucket: str, token: str, timeout_s: float = 10.0) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.service.write_service import WriteService

        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000), retries=False)
        self._service = WriteService(self._client.api_client)
        self._org, self._bucket = org, bucket
        self.description = f"influxdb v2 {url} org={org} bucket={bucket}"

    def write(self, lines: list[str]) -> None:
        from influxdb_client.rest import ApiException

        body = "\n".join(lines)
        try:
            _, status, _ = self._service.post_write_with_http_info(
                org=self._org, bucket=self._bucket, body=body, precision="ns",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as exc:
            detail = (exc.body or "").strip()[:300] if isinstance(exc.body, str) else ""
            raise SinkError(f"{self.description}: HTTP {exc.status}: {detail}", _transient(exc.status), exc.status) from None
        except Exception as exc:  # urllib3 raises many connection error types
            raise SinkError(f"{self.description}: {type(exc).__name__}: {exc}") from None
        if status != 204:
            raise SinkError(f"{self.description}: HTTP {status} instead of 204", _transient(status), status)

    def close(self) -> None:
        self._client.close()


def transport_from_config(config: InfluxV1 | InfluxV2, environ: dict[str, str] | None = None) -> Transport:
    """Build the transport of a site's ``storage.influxdb``.

    Secrets come from a systemd credential (``token_credential`` / ``password_credential``) or
    the environment (``token_env`` / ``password_env``), see :func:`gridctl.credentials.read_secret`.
    """
    if isinstance(config, InfluxV1):
        password = read_secret(config.password_credential, config.password_env, environ)
        if config.username and password is None:
            raise SinkError(f"no InfluxDB password for user '{config.username}': set "
                            f"{config.password_env} or the '{config.password_credential}' credential",
                            transient=False)
        return V1Transport(config.url, config.database, config.retention_policy, config.username, password)
    token = read_secret(config.token_credential, config.token_env, environ)
    if not token:
        raise SinkError(f"no InfluxDB token: set {config.token_env} or the '{config.token_credential}' credential", transient=False)
    return V2Transport(config.url, config.org, config.bucket, token)
