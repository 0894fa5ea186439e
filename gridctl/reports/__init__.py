"""Clerks' reports: monthly member statements and the block summary as CSV, XLSX and PDF."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from gridctl.config import Contract, SiteConfig
from gridctl.ledger import Ledger
from gridctl.reports.render import write_csv, write_pdf, write_xlsx
from gridctl.reports.statement import Document, InvoiceContext, Issuer, Line, Party, member_statement
from gridctl.reports.summary import block_summary

FORMATS = ("csv", "xlsx", "pdf")

__all__ = ["FORMATS", "Document", "InvoiceContext", "Line", "block_summary", "build_documents", "export",
           "invoice_context", "member_statement", "month_range"]


def invoice_context(site: SiteConfig | None, issue_date: dt.date | None = None) -> InvoiceContext:
    """Issuer, members' names and contracts from the site file; issue date default: today there."""
    tz = site.site.timezone if site is not None else "Asia/Tokyo"
    day = issue_date or dt.datetime.now(ZoneInfo(tz)).date()
    if site is None:
        return InvoiceContext(issue_date=day, tz=tz)
    issuer = None
    if site.invoice is not None:
        i = site.invoice
        issuer = Issuer(i.issuer_name, i.registration_number, i.address, i.contact)
    parties = tuple(Party(n.id, n.name, _contract_text(n.contract), n.contract.contract_number) for n in site.nodes)
    return InvoiceContext(issue_date=day, issuer=issuer, parties=parties, site_name=site.site.name, tz=tz)


def _contract_text(contract: Contract) -> str:
    capacity = (f"{contract.contract_amperes_a} A" if contract.contract_amperes_a is not None
                else f"{contract.contract_kw:g} kW")
    buyback = f", buy-back {contract.buyback_tariff}" if contract.buyback_tariff else ""
    return f"{contract.tariff}, {capacity}{buyback}"


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


def build_documents(
    ledger: Ledger, month: str, member: str | None = None, context: InvoiceContext | None = None
) -> list[Document]:
    """The block summary and the statements (of every member, or of ``member``) for ``month``.

    Raises
    ------
    ValueError
        No period of ``month`` is in the ledger, or ``member`` is not in it.
    """
    context = context or invoice_context(None)
    start, end = month_range(month, context.tz)
    periods = [s for s, _ in ledger.settlements(start, end)]
    if not periods:
        raise ValueError(f"{ledger.path}: no settled period in {month}")
    members = sorted({m.member_id for p in periods for m in p.members})
    if member is not None and member not in members:
        raise ValueError(f"{ledger.path}: member '{member}' has no entries in {month}")
    head = ledger.head_hash()
    docs = [block_summary(month, periods, head, context)]
    docs += [member_statement(m, month, periods, head, context) for m in members if member in (None, m)]
    return docs


def export(
    ledger: Ledger, month: str, fmt: str, out_dir: Path, member: str | None = None,
    context: InvoiceContext | None = None,
) -> list[Path]:
    """Write the month's documents in ``fmt`` (csv, xlsx or pdf) into ``out_dir``; returns the files."""
    if fmt not in FORMATS:
        raise ValueError(f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    docs = build_documents(ledger, month, member, context)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        return write_csv(docs, out_dir)
    if fmt == "xlsx":
        return [write_xlsx(docs, out_dir, month)]
    return [write_pdf(docs, out_dir, month)]
