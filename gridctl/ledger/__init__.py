"""Durable, append-only, hash-chained settlement ledger (SQLite) with outbox and state table."""

from gridctl.ledger.store import Entry, Ledger, LedgerError, RecordResult
from gridctl.ledger.verify import VerifyReport, verify_ledger

__all__ = ["Entry", "Ledger", "LedgerError", "RecordResult", "VerifyReport", "verify_ledger"]
