"""The ledger's transactions and the stored forms of its keys (used by :mod:`gridctl.ledger.store`)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING

from gridctl.ledger.files import LedgerError

if TYPE_CHECKING:
    from gridctl.ledger.store import Ledger

def iso(stamp: dt.datetime) -> str:
    """The stored form of a period or month start: UTC ISO 8601."""
    return stamp.astimezone(dt.timezone.utc).isoformat()


def kwh_value(member: str, value: Decimal | str) -> Decimal:
    try:
        kwh = Decimal(value)
    except (ArithmeticError, TypeError, ValueError):
        kwh = Decimal("NaN")
    if not kwh.is_finite() or kwh < 0:
        raise ValueError(f"opening import of '{member}' must be a non-negative number of kWh, not {value!r}")
    return kwh


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error), naming the file on failure.

    Inside an open transaction (:meth:`Ledger.batch`) it is a savepoint instead, released on
    success and rolled back on error, so the enclosing transaction goes on.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def __enter__(self) -> None:
        ledger = self._ledger
        ledger._db.execute("BEGIN IMMEDIATE" if ledger._depth == 0 else f"SAVEPOINT nested_{ledger._depth}")
        ledger._depth += 1

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        ledger = self._ledger
        ledger._depth -= 1
        savepoint = f"nested_{ledger._depth}" if ledger._depth else None
        if exc_type is None:
            try:
                if not savepoint and ledger._key is not None:
                    ledger._seal()
                ledger._db.execute(f"RELEASE {savepoint}" if savepoint else "COMMIT")
            except sqlite3.Error as commit_error:  # a full disk fails here, at the WAL write
                if not savepoint and ledger._db.in_transaction:
                    ledger._db.execute("ROLLBACK")  # nothing half-kept; the next write starts clean
                raise LedgerError(f"{ledger.path}: {commit_error}") from commit_error
            return False
        if savepoint:
            ledger._db.execute(f"ROLLBACK TO {savepoint}")
            ledger._db.execute(f"RELEASE {savepoint}")
        else:
            ledger._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise LedgerError(f"{ledger.path}: {exc}") from None
        return False
