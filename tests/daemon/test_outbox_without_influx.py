"""Without InfluxDB configured the outbox holds no telemetry (nobody would ever send it); the
settlements are recorded all the same. With InfluxDB configured (here unreachable: the rows wait)
telemetry is queued."""

from __future__ import annotations

from gridctl.config.policy import InfluxV1

from .conftest import fast_site
from .test_cycle_table import period_starts


def outbox_measurements(ledger) -> set[str]:
    return {line.split(",", 1)[0] for _id, line in ledger.outbox_peek(100_000)}


async def test_no_influxdb_no_telemetry_rows_but_settlements(make_daemon):
    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0)
    assert site.storage.influxdb is None
    daemon, ledger = make_daemon(site)
    await daemon.run(duration_s=3600)
    assert len(period_starts(ledger)) >= 1  # settled into the ledger
    assert "telemetry" not in outbox_measurements(ledger)
    assert daemon.telemetry.thinned == 0


async def test_with_influxdb_configured_telemetry_waits_in_the_outbox(make_daemon, tmp_path):
    site = fast_site(poll_period_s=10.0, setpoint_expiry_s=30.0)
    closed = InfluxV1(version=1, url="http://127.0.0.1:9", database="gridctl")
    site = site.model_copy(update={"storage": site.storage.model_copy(update={"influxdb": closed})})
    daemon, ledger = make_daemon(site, shipper=None)  # configured, nothing sends: rows wait
    await daemon.run(duration_s=3600)
    assert len(period_starts(ledger)) >= 1
    assert "telemetry" in outbox_measurements(ledger)
