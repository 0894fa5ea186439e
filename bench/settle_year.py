"""Settlement figures the retailers' issue asks for: settle rate, verify and export of a year.

Run: ``.venv/bin/python bench/settle_year.py [--year 2026] [--months 12]``. Prints figures;
asserts nothing.

1. Periods settled per second: a month of the reference site (Misono) settled and recorded
   period by period through ``SettlementBook`` into a durable ledger (``synchronous=FULL``,
   one transaction and fsync per period), as the daemon and ``gridctl settle run`` do.
2. A year of Misono periods (sample readings per month) settled through ``SettlementBook``
   into a ledger opened with ``durable=False`` (the fastest honest way to make one: the same
   entries, no fsync), then ``verify_ledger`` timed without and with the site file (the
   latter settles every period again).
3. The export of that year (every member of every period) to CSV and to Parquet, as
   ``gridctl settle export`` does it: read the current settlements, build the rows, write.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridctl.cli.settle_export import write_rows  # noqa: E402
from gridctl.config import SiteConfig, load_site  # noqa: E402
from gridctl.ledger import Ledger, SettlementBook, verify_ledger  # noqa: E402
from gridctl.settlement.export import ledger_rows  # noqa: E402
from gridctl.settlement.model import PeriodReadings  # noqa: E402
from gridctl.settlement.readings_csv import periods_from_counters  # noqa: E402
from gridctl.settlement.sample import sample_month  # noqa: E402


def timed(label: str, fn, per: int | None = None, unit: str = "period"):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    extra = f"  ({per / seconds:,.0f} {unit}s/s, {seconds / per * 1000:.2f} ms/{unit})" if per else ""
    print(f"{label:<52} {seconds:8.2f} s{extra}", flush=True)
    return result, seconds


def month_periods(site: SiteConfig, year: int, month: int) -> list[PeriodReadings]:
    """Every period of a local month of sample readings (counters rounded like a meter's)."""
    boundaries: dict = defaultdict(dict)
    for stamp, member, channel, imp, exp in sample_month(site, year, month):
        boundaries[stamp][(member, channel)] = (imp, exp)
    return periods_from_counters(boundaries)


def settle_all(book: SettlementBook, periods: list[PeriodReadings]) -> None:
    for readings in periods:
        _, result = book.settle(readings)
        if result.outcome != "new":
            raise SystemExit(f"period {readings.start_utc} was {result.outcome}, not new")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--months", type=int, default=12, help="months of the 'year' (fewer: extrapolated)")
    args = parser.parse_args()
    site = load_site(ROOT / "configs" / "misono.yaml")
    members = len(site.nodes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        august = month_periods(site, args.year, 8)
        with Ledger(folder / "month.sqlite", site.site.id) as ledger:
            _, seconds = timed(f"settle + record, durable, x{len(august)} (August)",
                               lambda: settle_all(SettlementBook(site, ledger), august), len(august))
        print(f"=> periods settled per second (durable ledger): {len(august) / seconds:,.0f}")

        path = folder / "year.sqlite"
        periods = 0
        with Ledger(path, site.site.id, durable=False) as ledger:
            book = SettlementBook(site, ledger)
            start = time.perf_counter()
            for month in range(1, args.months + 1):
                batch = month_periods(site, args.year, month)
                settle_all(book, batch)
                periods += len(batch)
            made = time.perf_counter() - start
        print(f"{f'make the year: sample + settle + record x{periods}':<52} {made:8.2f} s"
              f"  ({periods / made:,.0f} periods/s, durable=False)")
        scale = 12 / args.months
        if args.months < 12:
            print(f"   (only {args.months} months made: times below x{scale:.2f} EXTRAPOLATED to a year)")
        with Ledger(path, read_only=True) as ledger:
            report, plain = timed("verify_ledger (chain, readings, checks)", lambda: verify_ledger(ledger), periods)
            assert report.ok, report.problem
            report, full = timed("verify_ledger --config (+ settle every period again)",
                                 lambda: verify_ledger(ledger, site), periods)
            assert report.ok, report.problem
            print(f"=> verify time for a simulated year: {plain * scale:.1f} s; with --config "
                  f"{full * scale:.1f} s ({report.entries_checked:,} entries, {periods:,} periods)")
            rows, read = timed("export: read settlements + build rows",
                               lambda: list(ledger_rows(ledger.settlements())), periods * members, "row")
            metadata = {"gridctl.ledger_head_sha256": ledger.head_hash()}
            for fmt in ("csv", "parquet"):
                out = folder / f"year.{fmt}"
                _, wrote = timed(f"export: write {fmt}", lambda fmt=fmt, out=out: write_rows(rows, fmt, out, metadata),
                                 len(rows), "row")
                print(f"=> export of a year to {fmt}: {(read + wrote) * scale:.1f} s "
                      f"({len(rows):,} rows, {out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
