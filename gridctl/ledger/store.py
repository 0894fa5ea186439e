"""The settlement ledger: an append-only, hash-chained SQLite store with an outbox and a state table.

Durability: WAL journal with ``synchronous=FULL``, so a committed period survives power loss.
Each settled period is written in one transaction: its entries (one block entry and one per
member), the readings it was settled from, and its outbox points. Entries and readings are
append-only (triggers refuse UPDATE and DELETE); a correction appends reversal entries (sign -1,
same body) of the current revision and then the new revision, so the sum over all entries is
always the current state. Every entry carries ``sha256(prev_hash + canonical entry)``.
Settling a period again with an identical result records nothing (idempotent).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from influxdb_client import Point

from gridctl.settlement.codec import member_from_dict, member_to_dict, period_from_dict, period_to_dict
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.sinks.schema import as_lines, settlement_points

GENESIS_HASH = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    period_start_utc TEXT NOT NULL,
    revision INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('period', 'member')),
    member_id TEXT NOT NULL,
    sign INTEGER NOT NULL CHECK (sign IN (1, -1)),
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    UNIQUE (period_start_utc, revision, kind, member_id, sign)
);
CREATE TABLE IF NOT EXISTS readings (
    period_start_utc TEXT NOT NULL,
    revision INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (period_start_utc, revision)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_rejected (
    id INTEGER PRIMARY KEY,
    line TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    rejected_utc TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_utc TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS entries_append_only_u BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_append_only_d BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS readings_append_only_u BEFORE UPDATE ON readings
    BEGIN SELECT RAISE(ABORT, 'ledger readings are append-only'); END;
CREATE TRIGGER IF NOT EXISTS readings_append_only_d BEFORE DELETE ON readings
    BEGIN SELECT RAISE(ABORT, 'ledger readings are append-only'); END;
"""


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (one-line message naming the file)."""


@dataclass(frozen=True)
class RecordResult:
    """What :meth:`Ledger.record` did: ``new``, ``unchanged`` or ``corrected``, and the revision."""

    outcome: str
    revision: int


@dataclass(frozen=True)
class Entry:
    """One stored entry, as read back for verification and reports."""

    seq: int
    period_start_utc: str
    revision: int
    kind: str
    member_id: str
    sign: int
    body: dict[str, Any]
    body_text: str
    prev_hash: str
    hash: str


def canonical(data: Any) -> str:
    """Canonical JSON: sorted keys, no spaces (what is hashed)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, period: str, revision: int, kind: str, member: str, sign: int, body_text: str) -> str:
    """SHA-256 of an entry chained to its predecessor (the sequence number is implied by order)."""
    head = canonical([period, revision, kind, member, sign])
    return hashlib.sha256(f"{prev_hash}\n{head}\n{body_text}".encode()).hexdigest()


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _locked(method: Callable) -> Callable:
    """Serialise use of the connection: the daemon calls the ledger from worker threads."""

    @functools.wraps(method)
    def wrapper(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Ledger:
    """The durable store of settlements, readings, outbox and daemon state.

    Parameters
    ----------
    path : path-like
        SQLite file; created with its folder if absent.
    site_id : str
        Site id used as the ``site`` tag of outbox points.
    clock : callable, optional
        Returns the current UTC time (outbox and state timestamps); injectable for tests.
    """

    def __init__(self, path: str | Path, site_id: str = "", clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.path = Path(path)
        self.site_id = site_id
        self._clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = threading.RLock()
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"{self.path}: cannot open ledger: {exc}") from None
        # The site id tags every outbox point; remember it so a later `settle push` without a
        # site file re-sends the very same series (a different tag would duplicate points).
        stored = self.state_get("ledger.site_id")
        if stored is None and site_id:
            self.state_put("ledger.site_id", site_id)
        elif stored is not None and site_id and stored != site_id:
            raise LedgerError(f"{self.path}: ledger belongs to site '{stored}', not '{site_id}'")
        self.site_id = stored or site_id

    @_locked
    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settlements ---------------------------------------------------------------------
    def record(self, settlement: PeriodSettlement, readings: PeriodReadings) -> RecordResult:
        """Record one settled period in one transaction (idempotent; corrections reverse)."""
        return self.record_many([(settlement, readings)])[0]

    @_locked
    def record_many(self, items: Iterable[tuple[PeriodSettlement, PeriodReadings]]) -> list[RecordResult]:
        """Record several periods in one transaction; each period is all-or-nothing with the rest."""
        with self._transaction():
            return [self._record_one(s, r) for s, r in items]

    def _record_one(self, settlement: PeriodSettlement, readings: PeriodReadings) -> RecordResult:
        if readings.start_utc != settlement.start_utc or readings.sha256() != settlement.readings_sha256:
            raise LedgerError(f"{self.path}: settlement and readings of {settlement.start_utc} do not match")
        period = settlement.start_utc.astimezone(dt.timezone.utc).isoformat()
        bodies = [("period", "", period_to_dict(settlement))] + [
            ("member", m.member_id, member_to_dict(m)) for m in settlement.members
        ]
        current = self._current_entries(period)
        if current and [(k, m, canonical(b)) for k, m, b in bodies] == [
            (e.kind, e.member_id, e.body_text) for e in current
        ]:
            return RecordResult("unchanged", current[0].revision)
        revision = 1
        if current:
            revision = current[0].revision + 1
            for e in current:
                self._append(period, e.revision, e.kind, e.member_id, -1, e.body_text)
        for kind, member, body in bodies:
            self._append(period, revision, kind, member, 1, canonical(body))
        self._db.execute(
            "INSERT INTO readings VALUES (?, ?, ?, ?)", (period, revision, readings.sha256(), readings.to_json())
        )
        self._enqueue(settlement_points(settlement, self.site_id, revision))
        return RecordResult("corrected" if current else "new", revision)

    def _append(self, period: str, revision: int, kind: str, member: str, sign: int, body_text: str) -> None:
        row = self._db.execute("SELECT hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        digest = entry_hash(prev, period, revision, kind, member, sign, body_text)
        self._db.execute(
            "INSERT INTO entries (period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (period, revision, kind, member, sign, body_text, prev, digest),
        )

    def _current_entries(self, period: str) -> list[Entry]:
        """The entries of the current (latest, not reversed) revision of ``period``, in order."""
        row = self._db.execute(
            "SELECT MAX(revision) FROM entries WHERE period_start_utc = ? AND sign = 1", (period,)
        ).fetchone()
        if row is None or row[0] is None:
            return []
        return list(self._select("WHERE period_start_utc = ? AND revision = ? AND sign = 1", (period, row[0])))

    @_locked
    def entries(self) -> list[Entry]:
        """Every entry in chain order."""
        return list(self._select("", ()))

    def _select(self, where: str, args: tuple) -> Iterator[Entry]:
        cursor = self._db.execute(
            "SELECT seq, period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash"
            f" FROM entries {where} ORDER BY seq", args,
        )
        for seq, period, revision, kind, member, sign, body, prev, digest in cursor:
            yield Entry(seq, period, revision, kind, member, sign, json.loads(body), body, prev, digest)

    @_locked
    def head_hash(self) -> str:
        """Hash of the last entry (the ledger's fingerprint); the genesis hash when empty."""
        row = self._db.execute("SELECT hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return row[0] if row else GENESIS_HASH

    @_locked
    def settlements(self, start_utc: dt.datetime | None = None, end_utc: dt.datetime | None = None) -> list[tuple[PeriodSettlement, int]]:
        """Current settlement and revision of every period in ``[start, end)``, by period start."""
        clauses, args = ["sign = 1"], []
        if start_utc is not None:
            clauses.append("period_start_utc >= ?")
            args.append(start_utc.astimezone(dt.timezone.utc).isoformat())
        if end_utc is not None:
            clauses.append("period_start_utc < ?")
            args.append(end_utc.astimezone(dt.timezone.utc).isoformat())
        latest: dict[str, list[Entry]] = {}
        for e in self._select("WHERE " + " AND ".join(clauses), tuple(args)):
            group = latest.get(e.period_start_utc)
            if group is None or e.revision > group[0].revision:
                latest[e.period_start_utc] = [e]
            elif e.revision == group[0].revision:
                group.append(e)
        out = []
        for period in sorted(latest):
            group = latest[period]
            block = next(e for e in group if e.kind == "period")
            members = tuple(member_from_dict(e.body) for e in group if e.kind == "member")
            out.append((period_from_dict(block.body, members), block.revision))
        return out

    @_locked
    def readings(self, period_start_utc: dt.datetime, revision: int) -> PeriodReadings | None:
        """The readings a revision of a period was settled from."""
        row = self._db.execute(
            "SELECT body FROM readings WHERE period_start_utc = ? AND revision = ?",
            (period_start_utc.astimezone(dt.timezone.utc).isoformat(), revision),
        ).fetchone()
        return PeriodReadings.from_json(row[0]) if row else None

    @_locked
    def readings_rows(self) -> list[tuple[str, int, str, str]]:
        """Every stored readings row ``(period, revision, sha256, body)``."""
        return list(self._db.execute("SELECT period_start_utc, revision, sha256, body FROM readings"))

    @_locked
    def month_to_date_import_kwh(self, period_start_utc: dt.datetime, month_start_utc: dt.datetime) -> dict[str, Decimal]:
        """Grid import of each member from ``month_start_utc`` up to the period [kWh].

        Sums ``sign * grid_import_kwh`` over member entries, so reversed revisions cancel.
        """
        rows = self._db.execute(
            "SELECT member_id, sign, json_extract(body, '$.grid_import_kwh') FROM entries"
            " WHERE kind = 'member' AND period_start_utc >= ? AND period_start_utc < ?",
            (month_start_utc.astimezone(dt.timezone.utc).isoformat(), period_start_utc.astimezone(dt.timezone.utc).isoformat()),
        )
        totals: dict[str, Decimal] = {}
        for member, sign, kwh in rows:
            totals[member] = totals.get(member, Decimal(0)) + sign * Decimal(kwh)
        return totals

    # -- outbox --------------------------------------------------------------------------
    @_locked
    def enqueue_telemetry(self, points: Iterable[str | Point]) -> int:
        """Queue telemetry points (line protocol or ``Point``) for InfluxDB; returns how many."""
        lines = as_lines(points)
        with self._transaction():
            self._enqueue(lines)
        return len(lines)

    @_locked
    def requeue_settlements(self, start_utc: dt.datetime | None, end_utc: dt.datetime | None) -> int:
        """Queue the current points of every settled period in ``[start, end)`` again."""
        lines = []
        for settlement, revision in self.settlements(start_utc, end_utc):
            lines.extend(settlement_points(settlement, self.site_id, revision))
        with self._transaction():
            self._enqueue(lines)
        return len(lines)

    def _enqueue(self, lines: list[str]) -> None:
        now = self._clock().isoformat()
        self._db.executemany("INSERT INTO outbox (line, created_utc) VALUES (?, ?)", [(ln, now) for ln in lines])

    @_locked
    def outbox_peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` outbox rows ``(id, line)``."""
        return list(self._db.execute("SELECT id, line FROM outbox ORDER BY id LIMIT ?", (limit,)))

    @_locked
    def outbox_delete(self, ids: list[int]) -> None:
        """Remove acknowledged rows (call only after the server answered 204)."""
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    @_locked
    def outbox_reject(self, row_id: int, reason: str) -> None:
        """Move a row the server refuses as malformed (HTTP 400) to ``outbox_rejected``, kept for review."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO outbox_rejected SELECT id, line, created_utc, ?, ? FROM outbox WHERE id = ?",
                (self._clock().isoformat(), reason, row_id),
            )
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    @_locked
    def outbox_rejected(self) -> list[tuple[int, str, str]]:
        """Rows refused by the server: ``(id, line, reason)``."""
        return list(self._db.execute("SELECT id, line, reason FROM outbox_rejected ORDER BY id"))

    @_locked
    def outbox_backlog(self) -> tuple[int, dt.datetime | None]:
        """Number of queued rows and the creation time of the oldest (UTC) or None."""
        count, oldest = self._db.execute("SELECT COUNT(*), MIN(created_utc) FROM outbox").fetchone()
        return count, (dt.datetime.fromisoformat(oldest) if oldest else None)

    # -- state ---------------------------------------------------------------------------
    @_locked
    def state_get(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    @_locked
    def state_put(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable ``value`` under ``key`` (durably, in its own transaction)."""
        text = json.dumps(value, sort_keys=True)
        with self._transaction():
            self._db.execute(
                "INSERT INTO state (key, value, updated_utc) VALUES (?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_utc = excluded.updated_utc",
                (key, text, self._clock().isoformat()),
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error), naming the file on failure."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db, self._path = db, path

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is None:
            self._db.execute("COMMIT")
            return False
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise LedgerError(f"{self._path}: {exc}") from None
        return False
