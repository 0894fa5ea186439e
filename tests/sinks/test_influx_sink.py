"""The InfluxDB sink against a real InfluxDB 1.6 server on loopback (tests/fixtures/influxdb.py)."""

import asyncio
import datetime as dt
import functools
import http.server
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.ledger import Ledger
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month
from gridctl.sinks import OutboxShipper, SinkError, V1Transport, V2Transport, health_check, telemetry_point

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "configs" / "misono.yaml"


@functools.lru_cache(maxsize=1)
def misono():
    return load_site(SITE_FILE)


@functools.lru_cache(maxsize=1)
def settled_august():
    site = misono()
    periods = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))
    return [(settle_period(site, p), p) for p in periods]


def count(influxdb, database, field, measurement):
    rows = influxdb.rows(f'SELECT COUNT("{field}") FROM "{measurement}"', database)
    return rows[0]["count"] if rows else 0


def test_v1_end_to_end_values_read_back(influxdb, influx_database, tmp_path):
    items = [x for x in settled_august() if x[0].bought_kwh > 0][:5]
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.record_many(items)
        shipper = OutboxShipper(ledger, V1Transport(influxdb.url, influx_database), batch_size=7)
        assert shipper.drain() == 5 * (2 + len(misono().nodes))  # block, members, ledger head
        assert ledger.outbox_backlog() == (0, None)
        head_seq, head = len(ledger.entries()), ledger.head_hash()
    anchor = influxdb.rows("SELECT last(seq), last(head_sha256) FROM ledger_head WHERE site = 'misono'", influx_database)
    assert (anchor[0]["last"], anchor[0]["last_1"]) == (head_seq, head)  # a third party holds the head
    s = items[2][0]
    when = s.start_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    (row,) = influxdb.rows(
        f"SELECT * FROM settlement_member WHERE member = 'mall' AND time = '{when}'", influx_database
    )
    mall = s.member("mall")
    assert row["site"] == "misono" and row["mechanism"] == "sdr" and row["revision"] == 1
    assert row["p2p_paid_jpy"] == pytest.approx(float(mall.p2p_paid_jpy), abs=1e-9)
    assert row["bill_jpy"] == pytest.approx(float(mall.bill_jpy), abs=1e-9)
    assert row["grid_import_kwh"] == pytest.approx(float(mall.grid_import_kwh), abs=1e-9)
    (block,) = influxdb.rows(f"SELECT * FROM settlement_period WHERE time = '{when}'", influx_database)
    assert block["price_jpy_per_kwh"] == pytest.approx(float(s.price_jpy_per_kwh))
    assert block["money_balance_ok"] is True


def test_replay_overwrites_instead_of_duplicating(influxdb, influx_database, tmp_path):
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.record_many(settled_august()[:10])
        shipper = OutboxShipper(ledger, V1Transport(influxdb.url, influx_database))
        shipper.drain()
        assert ledger.requeue_settlements(None, None) == 80
        shipper.drain()
    assert count(influxdb, influx_database, "bill_jpy", "settlement_member") == 70
    assert count(influxdb, influx_database, "price_jpy_per_kwh", "settlement_period") == 10


def _forward(handler: http.server.BaseHTTPRequestHandler, request: urllib.request.Request) -> None:
    """Send ``request`` upstream and answer ``handler``'s client with what came back."""
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def _serve(handler: type):
    """Run ``handler`` on a loopback HTTP server; yields (its URL, the handler class)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


class _V2ToV1Proxy(http.server.BaseHTTPRequestHandler):
    """Test-only stand-in for an InfluxDB 2.x write endpoint.

    No InfluxDB 2.x server can be installed here (not in apt, PyPI or npm), and the 1.6 server
    answers 404 on /api/v2/write. This proxy maps ``/api/v2/write?bucket=B`` to the real server's
    ``/write?db=B`` and passes the body through unchanged, so the v2 transport and
    influxdb-client are exercised against a real storage engine.
    """

    upstream = ""
    seen_auth: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server naming
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path != "/api/v2/write":
            self.send_response(404)
            self.end_headers()
            return
        self.seen_auth.append(self.headers.get("Authorization", ""))
        target = f"{self.upstream}/write?" + urllib.parse.urlencode(
            {"db": query["bucket"][0], "precision": query.get("precision", ["ns"])[0]}
        )
        request = urllib.request.Request(target, data=body, method="POST")
        _forward(self, request)

    def log_message(self, *args):
        pass


@pytest.fixture
def v2_proxy(influxdb):
    handler = type("Proxy", (_V2ToV1Proxy,), {"upstream": influxdb.url, "seen_auth": []})
    yield from _serve(handler)


def test_v2_transport_through_influxdb_client(influxdb, influx_database, v2_proxy, tmp_path):
    url, handler = v2_proxy
    transport = V2Transport(url, org="misono", bucket=influx_database, token="s3cret")
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.record_many(settled_august()[:4])
        at = dt.datetime(2026, 8, 1, 3, tzinfo=dt.timezone.utc)
        ledger.enqueue_telemetry([telemetry_point("misono", "home-1-pv", at, {"power_kw": 3.25}, "home-1")])
        OutboxShipper(ledger, transport).drain()
    transport.close()
    assert handler.seen_auth and set(handler.seen_auth) == {"Token s3cret"}
    assert count(influxdb, influx_database, "bill_jpy", "settlement_member") == 28
    (row,) = influxdb.rows("SELECT power_kw FROM telemetry", influx_database)
    assert row["power_kw"] == 3.25


def test_health_check_proves_a_write(influxdb, influx_database, v2_proxy):
    ok = health_check(V1Transport(influxdb.url, influx_database), "misono")
    assert ok.ok
    (row,) = influxdb.rows("SELECT nonce FROM gridctl_health", influx_database)
    assert row["nonce"] == ok.nonce
    # influxdb-client's ping() succeeds against 1.6, but a v2 write is refused: unhealthy
    direct_v2 = V2Transport(influxdb.url, org="misono", bucket=influx_database, token="t")
    refused = health_check(direct_v2, "misono")
    direct_v2.close()
    assert not refused.ok and "404" in refused.detail
    assert not health_check(V1Transport(influxdb.url, "no_such_db"), "misono").ok


def test_outage_500_periods_arrive_exactly_once(influxdb, influx_database, tmp_path):
    items = settled_august()[:500]
    members = len(misono().nodes)

    async def scenario(ledger):
        shipper = OutboxShipper(
            ledger, V1Transport(influxdb.url, influx_database, timeout_s=2), batch_size=1000,
            backoff_initial_s=0.05, backoff_max_s=0.2, idle_s=0.05,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(shipper.run(stop))
        influxdb.stop()
        for start in range(0, 500, 50):  # the daemon records as periods close
            await asyncio.to_thread(ledger.record_many, items[start:start + 50])
        await asyncio.sleep(0.5)
        status = shipper.status()
        assert status.backlog_rows == 500 * (2 + members)  # block, members, ledger head
        assert status.consecutive_failures >= 1 and status.last_error
        assert status.oldest_age_s is not None and status.oldest_age_s >= 0
        influxdb.start()
        deadline = time.monotonic() + 60
        while shipper.status().backlog_rows and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task
        return shipper.status()

    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        final = asyncio.run(scenario(ledger))
    assert final.backlog_rows == 0 and final.consecutive_failures == 0
    assert count(influxdb, influx_database, "price_jpy_per_kwh", "settlement_period") == 500
    assert count(influxdb, influx_database, "bill_jpy", "settlement_member") == 500 * members


_SHIPPER = """
import sys
sys.path.insert(0, {root!r})
from gridctl.ledger import Ledger
from gridctl.sinks import OutboxShipper, V1Transport
ledger = Ledger({path!r}, "misono")
print("ready", flush=True)
OutboxShipper(ledger, V1Transport({url!r}, {db!r}), batch_size=250).drain()
"""


@pytest.mark.slow
def test_kill_9_of_the_writer_mid_batch(influxdb, influx_database, tmp_path):
    path = tmp_path / "l.sqlite"
    base = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)
    total = 20000
    with Ledger(path, "misono") as ledger:
        points = [
            telemetry_point("misono", f"dev-{i % 20}", base + dt.timedelta(seconds=i // 20), {"power_kw": float(i)})
            for i in range(total)
        ]
        ledger.enqueue_telemetry(points)
    code = _SHIPPER.format(root=str(ROOT), path=str(path), url=influxdb.url, db=influx_database)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    with Ledger(path) as probe:
        deadline = time.monotonic() + 60
        while probe.outbox_backlog()[0] > total * 0.6 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        left = probe.outbox_backlog()[0]
        assert 0 < left < total  # killed part way through
        OutboxShipper(probe, V1Transport(influxdb.url, influx_database)).drain()
        assert probe.outbox_backlog()[0] == 0
    assert count(influxdb, influx_database, "power_kw", "telemetry") == total
    (row,) = influxdb.rows("SELECT SUM(power_kw) FROM telemetry", influx_database)
    assert row["sum"] == sum(range(total))


def test_errors_are_one_line_and_keep_rows(tmp_path):
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.record_many(settled_august()[:1])
        shipper = OutboxShipper(ledger, V1Transport("http://127.0.0.1:9", "db", timeout_s=1))
        with pytest.raises(SinkError) as info:
            shipper.ship_once()
        assert "\n" not in str(info.value) and info.value.transient
        assert ledger.outbox_backlog()[0] == 9  # block, 7 members, ledger head
        assert 0.5 <= shipper.retry_delay_s() <= 1.0  # the first delay, less a jitter


def test_a_malformed_line_is_parked_not_blocking(influxdb, influx_database, tmp_path):
    at = dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc)
    good = [telemetry_point("misono", f"dev-{i}", at, {"power_kw": float(i)}) for i in range(5)]
    bad = "telemetry,device=broken power_kw=5u 1785542400000000000"  # unsigned ints: 1.6 refuses
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.enqueue_telemetry(good[:2] + [bad] + good[2:])
        shipper = OutboxShipper(ledger, V1Transport(influxdb.url, influx_database))
        shipper.drain()
        assert ledger.outbox_backlog()[0] == 0
        (rejected,) = ledger.outbox_rejected()
        assert rejected[1] == bad and "400" in rejected[2]
        assert shipper.rejected_rows == 1 and shipper.status().consecutive_failures == 0
    assert count(influxdb, influx_database, "power_kw", "telemetry") == 5


class _RecordingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards every request unchanged to the real server and records what was sent.

    Only a recorder: authentication is done by the real auth-enabled influxd behind it, the
    proxy just lets the test see the request line (where ``p=`` used to travel).
    """

    upstream = ""
    seen: list[tuple[str, str]] = []

    def do_POST(self):  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        authorization = self.headers.get("Authorization", "")
        self.seen.append((self.requestline, authorization))
        request = urllib.request.Request(self.upstream + self.path, data=body, method="POST")
        for name in ("Authorization", "Content-Type"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        _forward(self, request)

    def log_message(self, *args):
        pass


@pytest.fixture
def auth_proxy(influxdb_auth):
    handler = type("Recorder", (_RecordingProxy,), {"upstream": influxdb_auth.url, "seen": []})
    yield from _serve(handler)


def test_v1_credentials_travel_in_the_header_not_the_url(influxdb_auth, auth_proxy, tmp_path):
    url, handler = auth_proxy
    database = influxdb_auth.create_database()
    user, password = influxdb_auth.auth
    with Ledger(tmp_path / "l.sqlite", "misono") as ledger:
        ledger.record_many(settled_august()[:2])
        shipper = OutboxShipper(ledger, V1Transport(url, database, username=user, password=password))
        assert shipper.drain() == 2 * (2 + len(misono().nodes))  # block, members, ledger head
    assert count(influxdb_auth, database, "bill_jpy", "settlement_member") == 2 * len(misono().nodes)
    assert handler.seen
    for request_line, authorization in handler.seen:
        assert "p=" not in request_line and password not in request_line
        assert authorization.startswith("Basic ")


def test_v1_wrong_password_is_refused_not_echoed(influxdb_auth, tmp_path):
    database = influxdb_auth.create_database()
    transport = V1Transport(influxdb_auth.url, database, username="gridctl", password="wrong-one")
    with pytest.raises(SinkError) as info:
        transport.write(["probe value=1 1785542400000000000"])
    assert info.value.status == 401 and not info.value.transient
    assert "wrong-one" not in str(info.value)
