"""InfluxDB secrets as systemd credentials (``$CREDENTIALS_DIRECTORY``), each optional, against a
real InfluxDB 1.6 with authentication enabled (the session server of tests/fixtures/influxdb.py,
run a second time with ``auth-enabled = true``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gridctl.config.policy import InfluxV1, InfluxV2
from gridctl.credentials import read_secret
from gridctl.sinks import SinkError, telemetry_point, transport_from_config
from tests.fixtures.influxdb import InfluxServer

pytestmark = pytest.mark.integration
ADMIN, PASSWORD = "gridctl", "Pa55-w0rd"  # the fixture server's admin user


@pytest.fixture
def auth_influxdb(influxdb_auth: InfluxServer) -> InfluxServer:
    """The session's auth-enabled server (tests/fixtures/influxdb.py) with database ``secure``."""
    influxdb_auth.start()
    influxdb_auth.query('CREATE DATABASE "secure"')
    return influxdb_auth


def credentials(tmp_path: Path, **secrets: str) -> dict[str, str]:
    """An environment with ``$CREDENTIALS_DIRECTORY`` holding ``secrets`` (id -> text)."""
    folder = tmp_path / "credentials"
    folder.mkdir()
    for credential_id, text in secrets.items():
        (folder / credential_id.replace("_", "-")).write_text(text, encoding="utf-8")
    return {"CREDENTIALS_DIRECTORY": str(folder)}


def point(value: float) -> str:
    at = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)
    return telemetry_point("misono", "meter-1", at, {"power_kw": value})


def v1(server: InfluxServer) -> InfluxV1:
    return InfluxV1(version=1, url=server.url, database="secure", username=ADMIN)


def test_v1_password_from_a_credential_writes(auth_influxdb, tmp_path):
    env = credentials(tmp_path, influxdb_password=PASSWORD + "\n")  # as written by `cat > file`
    transport_from_config(v1(auth_influxdb), env).write([point(4.25)])
    result = auth_influxdb.query("SELECT power_kw FROM telemetry", "secure")
    assert result["results"][0]["series"][0]["values"][0][1] == 4.25


def test_v1_wrong_password_is_refused_by_the_server(auth_influxdb, tmp_path):
    env = credentials(tmp_path, influxdb_password="wrong")
    with pytest.raises(SinkError) as info:
        transport_from_config(v1(auth_influxdb), env).write([point(1.0)])
    assert info.value.status == 401 and not info.value.transient


@pytest.mark.parametrize("blank", ["", "\n", "  \n"])
def test_a_blank_credential_is_not_set(auth_influxdb, tmp_path, blank):
    """The unit's ``SetCredential=ID:\\n`` fallback when the file is absent: one clear line."""
    env = credentials(tmp_path, influxdb_password=blank, influxdb_token=blank)
    with pytest.raises(SinkError) as info:
        transport_from_config(v1(auth_influxdb), env)
    message = str(info.value)
    assert "\n" not in message and "influxdb-password" in message and ADMIN in message
    with pytest.raises(SinkError, match="influxdb-token"):
        transport_from_config(InfluxV2(version=2, url=auth_influxdb.url, org="o", bucket="b"), env)


def test_without_a_username_no_password_is_needed(tmp_path):
    env = credentials(tmp_path, influxdb_password="\n")
    transport = transport_from_config(InfluxV1(version=1, url="http://127.0.0.1:9", database="d"), env)
    assert "db=d" in transport.description


def test_the_credential_wins_over_the_environment_and_the_environment_still_works(tmp_path):
    env = credentials(tmp_path, influxdb_password="from-file\n")
    assert read_secret("influxdb-password", "PW", {**env, "PW": "from-env"}) == "from-file"
    assert read_secret("influxdb-password", "PW", {"PW": "from-env"}) == "from-env"
    assert read_secret("influxdb-password", "PW", {"PW": ""}) is None
