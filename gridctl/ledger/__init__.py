"""Durable, append-only, hash-chained settlement ledger (SQLite) with outbox and state table."""

from gridctl.ledger.book import SettlementBook, month_bounds_utc, settle_and_record
from gridctl.ledger.files import LedgerError, LedgerFileError
from gridctl.ledger.outbox import OutboxTarget, OutboxView
from gridctl.ledger.store import Entry, Ledger, RecordResult
from gridctl.ledger.verify import VerifyReport, verify_ledger

__all__ = [
    "Entry", "Ledger", "LedgerError", "LedgerFileError", "OutboxTarget", "OutboxView", "RecordResult", "SettlementBook", "VerifyReport", "month_bounds_utc",
    "settle_and_record", "verify_ledger",
]
