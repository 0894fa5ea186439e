"""``gridctl settle``: settle meter readings, verify the ledger, make statements, push to InfluxDB.

Exit codes: 0 ok, 1 runtime failure (a check failed, the server refused), 2 configuration or
usage error (bad site file, bad readings file, unknown ledger). Errors are one line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from gridctl.cli.common import EXIT_CONFIG, EXIT_RUNTIME, fail
from gridctl.config import ConfigError, SiteConfig, load_site

settle_app = typer.Typer(
    help="Settle 30-minute P2P periods into the ledger, verify it, report and push to InfluxDB.",
    no_args_is_help=True,
)

READINGS_HELP = (
    "CSV of cumulative counters: timestamp,member_id,channel,import_kwh,export_kwh; channel is "
    "'grid' or 'link:<link id>'; one row per channel at every JST half hour (see "
    "docs/settlement-readings.md)."
)




def _site(path: Path) -> SiteConfig:
    try:
        return load_site(path)
    except ConfigError as exc:
        first = exc.issues[0] if exc.issues else exc
        more = f" (and {len(exc.issues) - 1} more)" if len(exc.issues) > 1 else ""
        raise fail(f"{first}{more}", EXIT_CONFIG) from None


def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option} '{value}' is not an ISO 8601 time", EXIT_CONFIG) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ZoneInfo("Asia/Tokyo"))  # clerks think in JST
    return stamp.astimezone(dt.timezone.utc)


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} '{value}' is not a date (YYYY-MM-DD)", EXIT_CONFIG) from None


def _ledger_failure(exc: Exception) -> typer.Exit:
    """One line; a file that is not an intact ledger is bad input (exit 2), the rest exit 1."""
    from gridctl.ledger import LedgerFileError

    return fail(str(exc), EXIT_CONFIG if isinstance(exc, LedgerFileError) else EXIT_RUNTIME)


def _existing_ledger(path: Path, site_id: str = "", read_only: bool = False):
    from gridctl.ledger import Ledger, LedgerError

    if not path.is_file():
        raise fail(f"{path}: no such ledger", EXIT_CONFIG)
    try:
        return Ledger(path, site_id, read_only=read_only)
    except LedgerError as exc:
        raise _ledger_failure(exc) from None


@contextlib.contextmanager
def _sole_writer(path: Path) -> Iterator[None]:
    """Be the ledger's only writer while the block runs, or exit 1: never write beside the daemon."""
    from gridctl.ledger.lock import LockError, LockHeldError, hold_ledger

    try:
        lock = hold_ledger(path, "gridctl settle")
    except LockHeldError as exc:
        raise fail(f"{exc}; stop it first (settle verify and settle report still work while "
                   "it runs)", EXIT_RUNTIME) from None
    except LockError as exc:
        raise fail(str(exc), EXIT_RUNTIME) from None
    with lock:
        yield


@settle_app.command("run")
def run(
    config: Path = typer.Option(..., "--config", "-c", help="site file (tariffs, market rules, links)"),
    ledger_path: Path | None = typer.Option(None, "--ledger", help="ledger file [default: storage.ledger_path]"),
    readings: Path | None = typer.Option(None, "--readings", help=READINGS_HELP),
    start: str | None = typer.Option(None, "--from", help="first period start (ISO; JST if no offset)"),
    end: str | None = typer.Option(None, "--to", help="end of the last period (exclusive)"),
) -> None:
    """Settle every period of a readings file, or re-settle the ledger's stored readings in --from/--to."""
    from gridctl.ledger.batch import settle_into_ledger
    from gridctl.ledger import Ledger, LedgerError
    from gridctl.settlement.readings_csv import ReadingsFileError

    site = _site(config)
    path = ledger_path or site.storage.ledger_path
    begin, finish = _time(start, "--from"), _time(end, "--to")
    if readings is None and begin is None and finish is None:
        raise fail("give --readings FILE, or --from/--to to re-settle stored readings", EXIT_CONFIG)
    try:
        with _sole_writer(path), Ledger(path, site.site.id, key=_site_key(site)) as ledger:
            summary = settle_into_ledger(site, ledger, readings, begin, finish)
    except ReadingsFileError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    except OSError as exc:
        raise fail(f"{exc.filename}: {exc.strerror}", EXIT_CONFIG) from None
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    typer.echo(summary.line(path))
    if summary.first_failure:
        raise fail(summary.first_failure, EXIT_RUNTIME)


@settle_app.command("opening")
def opening(
    config: Path = typer.Option(..., "--config", "-c", help="site file (members, time zone)"),
    month: str = typer.Option(..., "--month", help="YYYY-MM (site local time): the month the ledger starts in"),
    imports: list[str] = typer.Option(
        ..., "--import", help="MEMBER=KWH: grid import earlier in the month (bill or meter); repeat per member"
    ),
    ledger_path: Path | None = typer.Option(None, "--ledger", help="ledger file [default: storage.ledger_path]"),
    source: str = typer.Option("", "--source", help="where the figures come from (bill number, meter)"),
) -> None:
    """Record, once, each member's grid import earlier in MONTH, before the month's first settled period.

    For a ledger that starts mid-month: the tiers of tiered tariffs then start where the
    member's bill is, and `settle verify --config` re-settles every period from it.
    """
    from gridctl.ledger import Ledger, LedgerError, SettlementBook

    site = _site(config)
    try:
        year, number = (int(x) for x in month.split("-"))
        at = dt.datetime(year, number, 1, tzinfo=ZoneInfo(site.site.timezone))
    except ValueError:
        raise fail(f"--month '{month}' is not YYYY-MM", EXIT_CONFIG) from None
    values = {}
    for item in imports:
        member, sep, kwh = item.partition("=")
        if not sep or not member.strip():
            raise fail(f"--import '{item}' is not MEMBER=KWH", EXIT_CONFIG)
        values[member.strip()] = kwh.strip()
    path = ledger_path or site.storage.ledger_path
    try:
        with _sole_writer(path), Ledger(path, site.site.id, key=_site_key(site)) as ledger:
            SettlementBook(site, ledger).record_opening_month_import(at, values, source)
    except ValueError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    typer.echo(f"{path}: opening balance of {month} recorded: "
               + ", ".join(f"{m} {v} kWh" for m, v in sorted(values.items())))


@settle_app.command("gap")
def gap(
    config: Path = typer.Option(..., "--config", "-c", help="site file (time zone, ledger path, sealing key)"),
    start: str = typer.Option(..., "--from", help="first period not settled (ISO; JST if no offset)"),
    end: str = typer.Option(..., "--to", help="end of the gap (exclusive)"),
    reason: str = typer.Option(..., "--reason", help="why these periods have no settlement (kept in the ledger)"),
    ledger_path: Path | None = typer.Option(None, "--ledger", help="ledger file [default: storage.ledger_path]"),
) -> None:
    """Declare, chained in the ledger, that the periods in [--from, --to) are not settled and why.

    For readings that are lost for good: `settle verify` then accepts those periods as a
    declared gap instead of reporting them missing. A gap may not cover a settled period.
    """
    from gridctl.ledger import Ledger, LedgerError

    site = _site(config)
    begin, finish = _time(start, "--from"), _time(end, "--to")
    assert begin is not None and finish is not None
    for option, stamp in (("--from", begin), ("--to", finish)):
        if stamp.minute % 30 or stamp.second or stamp.microsecond:
            raise fail(f"{option} {stamp.isoformat()} is not the start of a 30-minute period", EXIT_CONFIG)
    if finish <= begin or not reason.strip():
        raise fail("a gap needs --to after --from and a --reason", EXIT_CONFIG)
    path = ledger_path or site.storage.ledger_path
    if not path.is_file():
        raise fail(f"{path}: no such ledger", EXIT_CONFIG)
    try:
        with _sole_writer(path), Ledger(path, site.site.id, key=_site_key(site)) as ledger:
            settled = ledger.settlements(begin, finish)
            if settled:
                raise fail(f"{path}: period {settled[0][0].start_utc.isoformat()} in the gap is settled",
                           EXIT_CONFIG)
            ledger.record_gap(begin, finish, reason.strip())
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    periods = (finish - begin) // dt.timedelta(minutes=30)
    typer.echo(f"{path}: gap of {periods} periods declared from {begin.isoformat()} to {finish.isoformat()}")


@settle_app.command("verify")
def verify(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file"),
    config: Path | None = typer.Option(
        None, "--config", "-c",
        help="also settle every period again from its stored readings; its storage.ledger_key_credential seals",
    ),
    key_file: Path | None = typer.Option(None, "--key-file", help="the ledger's sealing key: check every seal"),
    anchors: list[str] = typer.Option(
        [], "--anchor", help="SEQ:SHA256 of a head held elsewhere (InfluxDB ledger_head, a statement); repeatable"
    ),
) -> None:
    """Check the chain, seals, anchors, bodies, revisions, readings, continuity and every period.

    Exit 0 ok (the last line is "head seq N sha256 H": hold it), 1 a problem (one line naming
    the first bad entry or period), 2 not a gridctl ledger or bad options.
    """
    from gridctl.ledger import LedgerError, verify_ledger
    from gridctl.ledger.seal import LedgerKeyError, parse_anchor, read_key_file

    site = _site(config) if config is not None else None
    try:
        held = [parse_anchor(a) for a in anchors]
        key = read_key_file(key_file) if key_file is not None else _site_key(site)
    except (ValueError, LedgerKeyError) as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    try:
        with _existing_ledger(ledger_path, read_only=True) as ledger:  # never changes the file
            report = verify_ledger(ledger, site, key, held)
    except LedgerError as exc:
        raise _ledger_failure(exc) from None
    if not report.ok:
        raise fail(f"{ledger_path}: {report.problem}", EXIT_RUNTIME)
    if report.entries_checked == 0:
        summary = "ok: empty ledger (nothing recorded yet): 0 entries"
    else:
        summary = (f"ok: {report.entries_checked} entries, {report.periods_checked} periods"
                   f" ({report.gap_periods} declared as gaps)")
    if report.seals_checked is not None:
        seals = f"{report.seals_checked} seals checked, head sealed"
    elif report.seals_stored:
        seals = f"head not checked: {report.seals_stored} seals, give --key-file to check them"
    else:
        seals = "head not sealed (no key)"
    typer.echo(f"{ledger_path}: {summary}; {seals}; {report.anchors_checked} anchors held")
    typer.echo(f"head seq {report.head_seq} sha256 {report.head_hash}")


def _site_key(site: SiteConfig | None) -> bytes | None:
    """The sealing key of the site's ``storage.ledger_key_credential`` (None if absent or blank)."""
    from gridctl.credentials import credential
    from gridctl.ledger.seal import key_from_text

    if site is None or not site.storage.ledger_key_credential:
        return None
    return key_from_text(credential(site.storage.ledger_key_credential))


@settle_app.command("export")
def export_periods(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file (read only: the daemon may be writing it)"),
    start: str = typer.Option(..., "--from", help="first period start (ISO date or time; JST if no offset)"),
    end: str = typer.Option(..., "--to", help="end of the range (exclusive)"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet (columns: docs/settlement-export.md)"),
    out: Path | None = typer.Option(None, "--out", help="file to write ('-': stdout, CSV only) "
                                    "[default: settlement-periods_FROM_TO.FORMAT]"),
    member: str | None = typer.Option(None, "--member", help="only this member's rows"),
) -> None:
    """Write one row per member per settled period in [--from, --to), at each period's current revision."""
    from gridctl.cli.settle_export import EXPORT_FORMATS, STDOUT, write_rows
    from gridctl.ledger import LedgerError
    from gridctl.settlement.export import JST, ExportValueError, ledger_rows

    if fmt not in EXPORT_FORMATS:
        raise fail(f"--format '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}", EXIT_CONFIG)
    begin, finish = _time(start, "--from"), _time(end, "--to")
    span = f"[{begin.astimezone(JST).isoformat()}, {finish.astimezone(JST).isoformat()})"
    if begin >= finish:
        raise fail(f"--from must be before --to, not {span}", EXIT_CONFIG)
    if out == STDOUT and fmt != "csv":
        raise fail("--out - (stdout) takes CSV only; give a file for parquet", EXIT_CONFIG)
    target = out or Path(f"settlement-periods_{begin.astimezone(JST):%Y%m%dT%H%M}"
                         f"_{finish.astimezone(JST):%Y%m%dT%H%M}.{fmt}")
    with _existing_ledger(ledger_path, read_only=True) as ledger:
        try:
            settled = ledger.settlements(begin, finish)
            rows = list(ledger_rows(settled, member))
            head, site_id = ledger.head_hash(), ledger.site_id
        except LedgerError as exc:
            raise _ledger_failure(exc) from None
        except ExportValueError as exc:
            raise fail(f"{ledger_path}: {exc}", EXIT_RUNTIME) from None
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:  # an unreadable entry body
            raise fail(f"{ledger_path}: an entry in {span} cannot be exported ({exc!r}); "
                       "run gridctl settle verify", EXIT_RUNTIME) from None
    if not rows:
        who = f" for member '{member}'" if member and settled else ""
        raise fail(f"{ledger_path}: no settled periods{who} in {span}", EXIT_CONFIG)
    metadata = {"gridctl.site_id": site_id, "gridctl.ledger_head_sha256": head,
                "gridctl.range_jst": span}
    try:
        write_rows(rows, fmt, target, metadata)
    except OSError as exc:
        raise fail(f"{exc.filename or target}: {exc.strerror or exc}", EXIT_RUNTIME) from None
    if target != STDOUT:
        typer.echo(f"{target}: {len(rows)} rows, {len(settled)} periods {span}, {fmt}")


@settle_app.command("report")
def report(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file"),
    month: str = typer.Option(..., "--month", help="YYYY-MM (JST)"),
    fmt: str = typer.Option("pdf", "--format", help="csv, xlsx or pdf"),
    out: Path = typer.Option(Path("."), "--out", help="output folder"),
    member: str | None = typer.Option(None, "--member", help="only this member's statement"),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="site file: the invoice issuer, members' names and contracts"
    ),
    issue_date: str | None = typer.Option(
        None, "--issue-date", help="YYYY-MM-DD printed on the statements [default: today in the site's time zone]"
    ),
) -> None:
    """Write member statements and the block summary for MONTH (Japanese and English labels)."""
    from gridctl.ledger import LedgerError
    from gridctl.reports import export, invoice_context

    site = _site(config) if config is not None else None
    context = invoice_context(site, _date(issue_date, "--issue-date"))
    with _existing_ledger(ledger_path, read_only=True) as ledger:
        try:
            files = export(ledger, month, fmt, out, member, context)
        except LedgerError as exc:
            raise _ledger_failure(exc) from None
        except ValueError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        except OSError as exc:
            raise fail(f"{exc.filename or out}: {exc.strerror}", EXIT_RUNTIME) from None
    for path in files:
        typer.echo(str(path))


@settle_app.command("push")
def push(
    ledger_path: Path = typer.Option(..., "--ledger", help="ledger file"),
    config: Path | None = typer.Option(None, "--config", "-c", help="site file with storage.influxdb"),
    url: str | None = typer.Option(None, "--url", help="InfluxDB 1.x URL (instead of the site's)"),
    database: str | None = typer.Option(None, "--database", help="InfluxDB 1.x database (with --url)"),
    start: str | None = typer.Option(None, "--from", help="first period start (ISO; JST if no offset)"),
    end: str | None = typer.Option(None, "--to", help="end of the range (exclusive)"),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, max=100000),
) -> None:
    """Queue a range of settled periods again and ship the whole outbox to InfluxDB."""
    from gridctl.sinks import OutboxShipper, SinkError, V1Transport, health_check, transport_from_config

    if url and database:
        transport, site_id = V1Transport(url, database), ""  # the ledger knows its site
    elif config is not None:
        site = _site(config)
        if site.storage.influxdb is None:
            raise fail(f"{config}: storage.influxdb is not configured", EXIT_CONFIG)
        try:
            transport = transport_from_config(site.storage.influxdb)
        except SinkError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        site_id = site.site.id
    else:
        raise fail("give --config SITE, or --url and --database", EXIT_CONFIG)
    with _existing_ledger(ledger_path) as ledger, _sole_writer(ledger_path):
        health = health_check(transport, site_id or ledger.site_id or "gridctl")
        if not health.ok:
            raise fail(f"InfluxDB is not accepting writes: {health.detail}", EXIT_RUNTIME)
        queued = ledger.requeue_settlements(_time(start, "--from"), _time(end, "--to"))
        shipper = OutboxShipper(ledger, transport, batch_size=batch_size)
        try:
            sent = shipper.drain()
        except SinkError as exc:
            left = ledger.outbox_backlog()[0]
            raise fail(f"{exc} ({left} points kept in the outbox)", EXIT_RUNTIME) from None
    typer.echo(f"queued {queued} points, shipped {sent} points to {transport.description}")


@settle_app.command("sample-readings")
def sample_readings(
    config: Path = typer.Option(..., "--config", "-c", help="site file"),
    month: str = typer.Option(..., "--month", help="YYYY-MM (site local time)"),
    out: Path = typer.Option(..., "--out", help="readings CSV to write"),
    seed: int = typer.Option(1, "--seed", help="weather and load randomness"),
) -> None:
    """Write a synthetic, physically coherent month of readings for SITE (for trials and tests)."""
    from gridctl.settlement.readings_csv import format_readings
    from gridctl.settlement.sample import sample_month

    site = _site(config)
    try:
        year, number = (int(x) for x in month.split("-"))
        dt.date(year, number, 1)
    except ValueError:
        raise fail(f"--month '{month}' is not YYYY-MM", EXIT_CONFIG) from None
    rows = sample_month(site, year, number, seed)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(format_readings(rows), encoding="utf-8")
    except OSError as exc:
        raise fail(f"{out}: {exc.strerror}", EXIT_RUNTIME) from None
    typer.echo(f"{out}: {len(rows)} counter rows, {len({r[0] for r in rows}) - 1} periods")


def register(app: typer.Typer) -> None:
    """Add the ``settle`` group to the root application."""
    app.add_typer(settle_app, name="settle")

