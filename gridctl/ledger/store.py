"""The settlement ledger: an append-only, hash-chained SQLite store with an outbox and a state table.

Durability: WAL journal with ``synchronous=FULL``, so a committed period survives power loss
(a simulation may open its ledger with ``durable=False``: no fsync). Each settled period is
written in one transaction: its entries (one ``period`` entry and one ``member`` entry per
member), the readings it was settled from, and its outbox points; :meth:`Ledger.batch` wraps
several periods in one transaction (each still all-or-nothing, as a savepoint). Entries and
readings are append-only (triggers refuse UPDATE and DELETE); a correction appends reversal
entries (sign -1, same body) of the current revision and then the new revision, so the sum over
all entries is always the current state. Every entry carries ``sha256(prev_hash + canonical
entry)``. Settling a period again with an identical result records nothing (idempotent).

A ledger that starts mid-month may hold, once per month and before any settlement of it, an
``opening`` entry per member: the grid import earlier in that month [kWh], keyed by the month's
start. They are chained like every entry; :mod:`gridctl.ledger.book` adds them to the
month-to-date import that picks the tier of tiered tariffs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from influxdb_client import Point

from gridctl.ledger.files import (
    APPEND_ONLY,
    ENTRIES_TABLE,
    SCHEMA,
    SETTLEMENT_KINDS,
    LedgerError,
    check_ledger_file,
    connect,
    create_new,
    refuse_unusable_file,
    what_is_wrong,
)
from gridctl.ledger.outbox import OutboxTarget
from gridctl.ledger.transaction import Transaction, iso, kwh_value
from gridctl.ledger.seal import Seal, seal_mac
from gridctl.settlement.codec import member_from_dict, member_to_dict, period_from_dict, period_to_dict
from gridctl.settlement.model import PeriodReadings, PeriodSettlement
from gridctl.sinks.schema import as_lines, ledger_head_point, settlement_points

GENESIS_HASH = "0" * 64
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
    """Serialise use of the connection: the daemon calls the ledger from worker threads.

    A database error (a damaged page met while reading) leaves as a one-line
    :class:`LedgerError` naming the file.
    """

    @functools.wraps(method)
    def wrapper(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.path}: {what_is_wrong(exc)}") from None

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
    durable : bool, optional
        True (the default, and always for the daemon): ``synchronous=FULL``, a committed period
        survives power loss. False: ``synchronous=OFF``, for a simulation's ledger, which can be
        made again; a crash of the machine may lose or corrupt it.
    read_only : bool, optional
        Open an existing ledger with SQLite's ``mode=ro`` (verification and reports): the file
        is never changed, no schema is made, and a read-only file can be read.
    key : bytes, optional
        The sealing key (:mod:`gridctl.ledger.seal`): every write transaction that adds entries
        also appends a seal of the new head. None: nothing is sealed.

    Raises
    ------
    LedgerFileError
        The file exists but is not an intact gridctl ledger (checked before anything is
        written to it): empty, not SQLite, another database, or damaged pages.
    LedgerError
        Any other failure to open or use it; messages are one line and name the file.
    """

    def __init__(self, path: str | Path, site_id: str = "", clock: Callable[[], dt.datetime] = _utc_now,
                 durable: bool = True, read_only: bool = False, key: bytes | None = None) -> None:
        self.path = Path(path)
        self._key = key
        self.site_id = site_id
        self._clock = clock
        self._depth = 0  # open transactions: 0 none, 1 BEGIN, more are savepoints inside it
        self._lock = threading.RLock()
        existed = self.path.exists()
        refuse_unusable_file(self.path, existed, read_only)
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not existed:
                    create_new(self.path)
            self._db = connect(self.path, read_only)
            check_ledger_file(self._db, self.path)  # before anything writes to it
            if not read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
                self._db.executescript(SCHEMA)
                self._allow_openings()
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"{self.path}: cannot open ledger: {exc}") from None
        # The site id tags every outbox point; remember it so a later `settle push` without a
        # site file re-sends the very same series (a different tag would duplicate points).
        stored = self.state_get("ledger.site_id") if self._has_state() else None
        if stored is None and site_id and not read_only:
            self.state_put("ledger.site_id", site_id)
        elif stored is not None and site_id and stored != site_id:
            raise LedgerError(f"{self.path}: ledger belongs to site '{stored}', not '{site_id}'")
        self.site_id = stored or site_id

    @_locked
    def _has_state(self) -> bool:
        """False for a ledger made before the state table, opened read-only."""
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'state'"
                                ).fetchone() is not None

    @_locked
    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _allow_openings(self) -> None:
        """Upgrade a ledger made before opening balances or gaps, whose CHECK refuses those kinds.

        SQLite cannot change a CHECK constraint in place: the entries are copied unchanged (same
        sequence numbers, hashes and chain) into a table with the new constraint.
        """
        def upgraded() -> bool:
            row = self._db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
            return "'gap'" in row[0]

        if upgraded():
            return
        with self._transaction():
            if upgraded():  # another connection did it first
                return
            self._db.execute(ENTRIES_TABLE.format(table="entries_upgrade"))
            self._db.execute("INSERT INTO entries_upgrade SELECT * FROM entries")
            self._db.execute("DROP TABLE entries")  # and its triggers; an implicit delete fires none
            self._db.execute("ALTER TABLE entries_upgrade RENAME TO entries")
            for trigger in APPEND_ONLY:
                self._db.execute(trigger.format(table="entries"))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make every write inside one transaction (one commit, one fsync).

        Each :meth:`record` inside is a savepoint, so a period is still all-or-nothing; an
        exception leaving the block rolls the whole batch back. Other threads wait.
        """
        with self._lock, self._transaction():
            yield

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
        period = iso(settlement.start_utc)
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
            seq, head = self._append(period, revision, kind, member, 1, canonical(body))
        self._db.execute(
            "INSERT INTO readings VALUES (?, ?, ?, ?)", (period, revision, readings.sha256(), readings.to_json())
        )
        self._enqueue(settlement_points(settlement, self.site_id, revision)
                      + [ledger_head_point(self.site_id, seq, head, settlement.start_utc)])
        return RecordResult("corrected" if current else "new", revision)

    def _append(self, period: str, revision: int, kind: str, member: str, sign: int, body_text: str) -> tuple[int, str]:
        """Append one chained entry; returns its ``seq`` and hash."""
        row = self._db.execute("SELECT hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[0] if row else GENESIS_HASH
        digest = entry_hash(prev, period, revision, kind, member, sign, body_text)
        cursor = self._db.execute(
            "INSERT INTO entries (period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (period, revision, kind, member, sign, body_text, prev, digest),
        )
        return cursor.lastrowid, digest

    def _seal(self) -> None:
        """Seal the head if entries were added since the last seal (inside the committing transaction)."""
        head = self._db.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None:
            return
        sealed = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM seals").fetchone()[0]
        if head[0] > sealed:
            self._db.execute("INSERT INTO seals VALUES (?, ?, ?)", (head[0], head[1], seal_mac(self._key, *head)))

    def _current_entries(self, period: str) -> list[Entry]:
        """The entries of the current (latest, not reversed) revision of ``period``, in order."""
        row = self._db.execute(
            f"SELECT MAX(revision) FROM entries WHERE period_start_utc = ? AND sign = 1 AND {SETTLEMENT_KINDS}",
            (period,),
        ).fetchone()
        if row is None or row[0] is None:
            return []
        return list(self._select(
            f"WHERE period_start_utc = ? AND revision = ? AND sign = 1 AND {SETTLEMENT_KINDS}", (period, row[0])
        ))

    @_locked
    def entry_rows(self) -> list[tuple[int, str, int, str, str, int, str, str, str]]:
        """Every entry as stored, unparsed, in chain order: ``(seq, period_start_utc, revision,
        kind, member_id, sign, body, prev_hash, hash)`` (verification reads a damaged body too)."""
        return self._db.execute(
            "SELECT seq, period_start_utc, revision, kind, member_id, sign, body, prev_hash, hash"
            " FROM entries ORDER BY seq").fetchall()

    @_locked
    def seals(self) -> list[Seal]:
        """Every seal in order ([] for a ledger made before seals)."""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seals'").fetchone() is None:
            return []
        return [Seal(*row) for row in self._db.execute("SELECT seq, head, mac FROM seals ORDER BY seq")]

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
        clauses, args = ["sign = 1", SETTLEMENT_KINDS], []
        if start_utc is not None:
            clauses.append("period_start_utc >= ?")
            args.append(iso(start_utc))
        if end_utc is not None:
            clauses.append("period_start_utc < ?")
            args.append(iso(end_utc))
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
            block = next((e for e in group if e.kind == "period"), None)
            if block is None:
                raise LedgerError(f"{self.path}: period {period} revision {group[0].revision} has no period entry"
                                  " (run settle verify)")
            members = tuple(member_from_dict(e.body) for e in group if e.kind == "member")
            out.append((period_from_dict(block.body, members), block.revision))
        return out

    @_locked
    def readings(self, period_start_utc: dt.datetime, revision: int) -> PeriodReadings | None:
        """The readings a revision of a period was settled from."""
        row = self._db.execute(
            "SELECT body FROM readings WHERE period_start_utc = ? AND revision = ?",
            (iso(period_start_utc), revision),
        ).fetchone()
        return PeriodReadings.from_json(row[0]) if row else None

    @_locked
    def readings_rows(self) -> list[tuple[str, int, str, str]]:
        """Every stored readings row ``(period, revision, sha256, body)``."""
        return list(self._db.execute("SELECT period_start_utc, revision, sha256, body FROM readings"))

    @_locked
    def grid_import_kwh(self, start_utc: dt.datetime, end_utc: dt.datetime) -> dict[str, Decimal]:
        """Grid import of each member in the current settlements of the periods in ``[start, end)`` [kWh].

        Only the latest revision of a period counts (reversed revisions are left out).
        """
        rows = self._db.execute(
            "SELECT e.member_id, json_extract(e.body, '$.grid_import_kwh') FROM entries AS e JOIN ("
            " SELECT period_start_utc, MAX(revision) AS revision FROM entries"
            " WHERE kind = 'period' AND sign = 1 AND period_start_utc >= ? AND period_start_utc < ?"
            " GROUP BY period_start_utc) AS c USING (period_start_utc, revision)"
            " WHERE e.kind = 'member' AND e.sign = 1",
            (iso(start_utc), iso(end_utc)),
        )
        totals: dict[str, Decimal] = {}
        for member, kwh in rows:
            totals[member] = totals.get(member, Decimal(0)) + Decimal(kwh)
        return totals

    # -- gaps ----------------------------------------------------------------------------
    @_locked
    def record_gap(self, start_utc: dt.datetime, end_utc: dt.datetime, reason: str) -> None:
        """Declare, chained, that the periods in ``[start, end)`` are not settled and why.

        ``settle verify`` accepts a run of missing periods only where a gap declares it. The
        daemon never needs one: after downtime it settles every missed period from the counters
        at its ends (flagged where a reading is missing). For a ledger whose readings were lost.
        """
        start, end = iso(start_utc), iso(end_utc)
        if not end_utc > start_utc or not reason.strip():
            raise ValueError("a gap needs an end after its start and a reason")
        with self._transaction():
            self._append(start, 1, "gap", "", 1, canonical({"end_utc": end, "reason": reason}))

    # -- opening balances ----------------------------------------------------------------
    @_locked
    def record_opening_month_import(
        self, month_start_utc: dt.datetime, month_end_utc: dt.datetime, imports_kwh: Mapping[str, Decimal | str],
        source: str = "",
    ) -> None:
        """Record, once, each member's grid import earlier in a month than the ledger's first period.

        For a ledger that starts mid-month (a daemon commissioned on the 17th, a simulation),
        from the retailer's bill or the meter, so the tiers of tiered tariffs are right and
        re-settling reproduces every period. One ``opening`` entry per member, chained like
        every entry, in one transaction.

        Parameters
        ----------
        month_start_utc, month_end_utc : datetime
            The site-local calendar month ``[start, end)``, tz-aware.
        imports_kwh : mapping of str to Decimal
            Grid import of each member in the month before the ledger's first period [kWh, >= 0].
        source : str
            Where the figures come from (a bill number, "meter", "simulation estimate").

        Raises
        ------
        LedgerError
            The month already has an opening balance or any settlement.
        ValueError
            No member, or a value that is not a non-negative number of kWh.
        """
        values = {member: kwh_value(member, value) for member, value in sorted(imports_kwh.items())}
        if not values:
            raise ValueError("an opening balance needs at least one member")
        start, end = iso(month_start_utc), iso(month_end_utc)
        window = "period_start_utc >= ? AND period_start_utc < ? LIMIT 1"
        with self._transaction():
            if self._db.execute(f"SELECT 1 FROM entries WHERE kind = 'opening' AND {window}", (start, end)).fetchone():
                raise LedgerError(f"{self.path}: the month starting {start} already has an opening balance")
            if self._db.execute(f"SELECT 1 FROM entries WHERE {SETTLEMENT_KINDS} AND {window}", (start, end)).fetchone():
                raise LedgerError(
                    f"{self.path}: the month starting {start} already has settlements;"
                    " an opening balance must be recorded before its first period"
                )
            for member, kwh in values.items():
                self._append(start, 1, "opening", member, 1, canonical({"grid_import_kwh": str(kwh), "source": source}))

    @_locked
    def openings(self) -> dict[str, dict[str, Decimal]]:
        """Opening grid import [kWh] per member, by month start (UTC ISO 8601), as stored."""
        out: dict[str, dict[str, Decimal]] = {}
        for e in self._select("WHERE kind = 'opening' AND sign = 1", ()):
            out.setdefault(e.period_start_utc, {})[e.member_id] = Decimal(e.body["grid_import_kwh"])
        return out

    @_locked
    def opening_month_import(self, month_start_utc: dt.datetime) -> dict[str, Decimal]:
        """The opening grid import [kWh] per member of the month starting at ``month_start_utc`` ({} if none)."""
        rows = self._db.execute(
            "SELECT member_id, json_extract(body, '$.grid_import_kwh') FROM entries"
            " WHERE kind = 'opening' AND sign = 1 AND period_start_utc = ?",
            (iso(month_start_utc),),
        )
        return {member: Decimal(kwh) for member, kwh in rows}

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

    def _enqueue(self, lines: list[str], target: OutboxTarget = OutboxTarget.INFLUXDB) -> None:
        now = self._clock().isoformat()
        self._db.executemany(f"INSERT INTO {target.table} (line, created_utc) VALUES (?, ?)",
                             [(ln, now) for ln in lines])

    @_locked
    def enqueue_rows(self, target: OutboxTarget, rows: Iterable[str]) -> int:
        """Queue ready-made rows (one entity or point each) for ``target``; returns how many."""
        lines = list(rows)
        with self._transaction():
            self._enqueue(lines, target)
        return len(lines)

    @_locked
    def outbox_peek(self, limit: int, target: OutboxTarget = OutboxTarget.INFLUXDB) -> list[tuple[int, str]]:
        """The oldest ``limit`` outbox rows ``(id, line)`` of ``target``."""
        return list(self._db.execute(f"SELECT id, line FROM {target.table} ORDER BY id LIMIT ?", (limit,)))

    @_locked
    def outbox_delete(self, ids: list[int], target: OutboxTarget = OutboxTarget.INFLUXDB) -> None:
        """Remove acknowledged rows (call only after the server acknowledged them: 204, 2xx)."""
        with self._transaction():
            self._db.executemany(f"DELETE FROM {target.table} WHERE id = ?", [(i,) for i in ids])

    @_locked
    def outbox_reject(self, row_id: int, reason: str, target: OutboxTarget = OutboxTarget.INFLUXDB) -> None:
        """Move a row the server refuses as malformed (HTTP 400) to the target's rejected table, kept for review."""
        with self._transaction():
            self._db.execute(
                f"INSERT INTO {target.rejected_table} SELECT id, line, created_utc, ?, ? FROM {target.table}"
                " WHERE id = ?", (self._clock().isoformat(), reason, row_id),
            )
            self._db.execute(f"DELETE FROM {target.table} WHERE id = ?", (row_id,))

    @_locked
    def outbox_rejected(self, target: OutboxTarget = OutboxTarget.INFLUXDB) -> list[tuple[int, str, str]]:
        """Rows refused by the server: ``(id, line, reason)``."""
        return list(self._db.execute(f"SELECT id, line, reason FROM {target.rejected_table} ORDER BY id"))

    @_locked
    def outbox_backlog(self, target: OutboxTarget = OutboxTarget.INFLUXDB) -> tuple[int, dt.datetime | None]:
        """Number of queued rows of ``target`` and the creation time of the oldest (UTC) or None."""
        count, oldest = self._db.execute(f"SELECT COUNT(*), MIN(created_utc) FROM {target.table}").fetchone()
        return count, (dt.datetime.fromisoformat(oldest) if oldest else None)

    @_locked
    def changed_periods_since(self, seq: int) -> tuple[list[dt.datetime], int]:
        """Starts of the periods settled or corrected after entry ``seq``, and the last entry's seq.

        What a feed that remembers the last ``seq`` it queued must queue next.
        """
        rows = self._db.execute(
            f"SELECT DISTINCT period_start_utc FROM entries WHERE seq > ? AND {SETTLEMENT_KINDS}"
            " ORDER BY period_start_utc", (seq,),
        ).fetchall()
        head = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM entries").fetchone()[0]
        return [dt.datetime.fromisoformat(row[0]) for row in rows], head

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

    def _transaction(self) -> Transaction:
        return Transaction(self)
