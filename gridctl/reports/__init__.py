"""Clerks' reports: monthly member statements and the block summary as CSV, XLSX and PDF."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from gridctl.ledger import Ledger
from gridctl.reports.render import write_csv, write_pdf, write_xlsx
from gridctl.reports.statement import Document, Line, block_summary, member_statement

FORMATS = ("csv", "xlsx", "pdf")

__all__ = ["FORMATS", "Document", "Line", "block_summary", "build_documents", "export", "member_statement", "month_range"]


def month_range(month: str, tz: str = "Asia/Tokyo") -> tuple[dt.datetime, dt.datetime]:
    """UTC bounds ``[start, end)`` of local month ``YYYY-MM`` (ValueError if malformed)."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"month '{month}' is not YYYY-MM") from None
    zone = ZoneInfo(tz)
    start = first.replace(tzinfo=zone)
    end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def build_documents(ledger: Ledger, month: str, member: str | None = None, tz: str = "Asia/Tokyo") -> list[Document]:
    """The block summary and the statements (of every member, or of ``member``) for ``month``.

    Raises
    ------
    ValueError
        No period of ``month`` is in the ledger, or ``member`` is not in it.
    """
    start, end = month_range(month, tz)
    periods = [s for s, _ in ledger.settlements(start, end)]
    if not periods:
        raise ValueError(f"{ledger.path}: no settled period in {month}")
    members = sorted({m.member_id for p in periods for m in p.members})
    if member is not None and member not in members:
        raise ValueError(f"{ledger.path}: member '{member}' has no entries in {month}")
    head = ledger.head_hash()
    docs = [block_summary(month, periods, head, tz)]
    docs += [member_statement(m, month, periods, head, tz) for m in members if member in (None, m)]
    return docs


def export(ledger: Ledger, month: str, fmt: str, out_dir: Path, member: str | None = None) -> list[Path]:
    """Write the month's documents in ``fmt`` (csv, xlsx or pdf) into ``out_dir``; returns the files."""
    if fmt not in FORMATS:
        raise ValueError(f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    docs = build_documents(ledger, month, member)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return write_csv(docs, out_dir)
    if fmt == "xlsx":
        return [write_xlsx(docs, out_dir, month)]
    return [write_pdf(docs, out_dir, month)]
