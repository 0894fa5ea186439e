"""Settlement benchmark: settle, record, verify, report and ship a month of the reference site.

Run: ``.venv/bin/python bench/settlement.py`` (starts a throw-away influxd on loopback through
the test fixture's server class when ``influxd`` is installed). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridctl.config import load_site  # noqa: E402
from gridctl.ledger import Ledger, verify_ledger  # noqa: E402
from gridctl.reports import export  # noqa: E402
from gridctl.settlement import settle_period  # noqa: E402
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters  # noqa: E402
from gridctl.settlement.sample import sample_month  # noqa: E402
from gridctl.sinks import OutboxShipper, V1Transport  # noqa: E402


def timed(label: str, fn, per: int | None = None, unit: str = "period"):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    extra = f"  ({seconds / per * 1000:.2f} ms/{unit})" if per else ""
    print(f"{label:<44} {seconds:8.2f} s{extra}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--month", default="2026-08")
    args = parser.parse_args()
    year, month = (int(x) for x in args.month.split("-"))
    site = load_site(ROOT / "configs" / "misono.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = timed("sample month of readings", lambda: format_readings(sample_month(site, year, month)))
        periods = timed("parse readings file", lambda: periods_from_counters(parse_readings(text)))
        n = len(periods)
        items = timed(f"settle_period x{n}", lambda: [(settle_period(site, p), p) for p in periods], n)
        with Ledger(folder / "single.sqlite", "misono") as ledger:
            timed("record, one transaction per period (x96)", lambda: [ledger.record(*i) for i in items[:96]], 96)
        with Ledger(folder / "month.sqlite", "misono") as ledger:
            timed(f"record_many, 48 periods per transaction", lambda: [ledger.record_many(items[i:i + 48]) for i in range(0, n, 48)], n)
            timed("verify_ledger (chain + every period)", lambda: verify_ledger(ledger), n)
            for fmt in ("csv", "xlsx", "pdf"):
                timed(f"report {fmt}", lambda fmt=fmt: export(ledger, args.month, fmt, folder / fmt))
            _ship(ledger, folder)


def _ship(ledger: Ledger, folder: Path) -> None:
    try:
        from tests.fixtures.influxdb import InfluxServer
        server = InfluxServer(folder)
        server.start()
    except Exception as exc:  # noqa: BLE001 - the bench just skips this figure
        print(f"influxd not available, shipping not measured: {exc}")
        return
    try:
        database = server.create_database()
        rows = ledger.outbox_backlog()[0]
        shipper = OutboxShipper(ledger, V1Transport(server.url, database), batch_size=5000)
        timed(f"ship outbox to InfluxDB 1.6 ({rows} points)", shipper.drain, rows, "point")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
