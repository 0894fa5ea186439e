"""The ledger file: its SQLite schema, and opening it safely.

A new ledger appears whole (made in a private scratch file, mode 0600 whatever the umask, and
linked into place); an existing file is checked (every page readable, a ledger's entries table)
before anything writes to it; a reader opens it read-only (``mode=ro``) and never makes a schema.
Whatever is wrong comes out as one line naming the file (:class:`LedgerError`,
:class:`LedgerFileError`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

ENTRIES_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    seq INTEGER PRIMARY KEY,
    period_start_utc TEXT NOT NULL,
    revision INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('period', 'member', 'opening', 'gap')),
    member_id TEXT NOT NULL,
    sign INTEGER NOT NULL CHECK (sign IN (1, -1)),
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    UNIQUE (period_start_utc, revision, kind, member_id, sign)
)"""
APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS {table}_append_only_u BEFORE UPDATE ON {table}"
    " BEGIN SELECT RAISE(ABORT, 'ledger {table} are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS {table}_append_only_d BEFORE DELETE ON {table}"
    " BEGIN SELECT RAISE(ABORT, 'ledger {table} are append-only'); END",
)
SCHEMA = ENTRIES_TABLE.format(table="entries") + """;
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
CREATE TABLE IF NOT EXISTS cityos_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line TEXT NOT NULL,
    created_utc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cityos_outbox_rejected (
    id INTEGER PRIMARY KEY,
    line TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    rejected_utc TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seals (
    seq INTEGER PRIMARY KEY,
    head TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_utc TEXT NOT NULL
);
"""
SCHEMA += "".join(f"{t.format(table=table)};\n" for table in ("entries", "readings", "seals")
                  for t in APPEND_ONLY)
#: Entry kinds of a settled period (``opening`` is a month's opening balance, ``gap`` a declared
#: run of periods that were not settled).
SETTLEMENT_KINDS = "kind IN ('period', 'member')"


class LedgerError(RuntimeError):
    """The ledger cannot be opened or written (one-line message naming the file)."""


class LedgerFileError(LedgerError):
    """The file is not an intact gridctl ledger: bad input, refused before anything is written."""


#: Columns of the hash-chained entries table: what identifies a gridctl ledger, of any age.
_ENTRY_COLUMNS = frozenset({"seq", "period_start_utc", "revision", "kind", "member_id", "sign", "body",
                            "prev_hash", "hash"})


#: Mode of a new ledger file [octal]: it holds every member's billing data, so the owner only.
#: SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
LEDGER_MODE = 0o600


def _create_private(path: Path) -> None:
    """Create ``path`` empty with :data:`LEDGER_MODE` whatever the umask (an existing file is
    left as it is: a clerk may open a copy that is not theirs)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, LEDGER_MODE))


def create_new(path: Path) -> None:
    """Make a new ledger at ``path`` that appears whole or not at all.

    The schema is written into a private temporary file next to it, which is then linked into
    place: a crash while creating leaves no empty or half-made file where the ledger belongs
    (which the next start would refuse as "not a gridctl ledger"). If another process made the
    ledger first, theirs stays.
    """
    scratch = path.with_name(f".{path.name}.{os.getpid()}.new")
    scratch.unlink(missing_ok=True)
    _create_private(scratch)
    try:
        db = sqlite3.connect(scratch, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def refuse_unusable_file(path: Path, existed: bool, read_only: bool) -> None:
    """Refuse a missing file to read, and an empty one (a new ledger is made only where none is)."""
    if read_only and not existed:
        raise LedgerFileError(f"{path}: no such ledger")
    try:
        empty = existed and path.is_file() and path.stat().st_size == 0
    except OSError as exc:
        raise LedgerError(f"{path}: cannot open ledger: {exc.strerror}") from None
    if empty:
        raise LedgerFileError(f"{path}: not a gridctl ledger (empty file)")


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to ``path``; ``mode=ro`` (a ``file:`` URI) when reading only."""
    target = f"{path.resolve().as_uri()}?mode=ro" if read_only else str(path)
    return sqlite3.connect(target, uri=read_only, isolation_level=None, timeout=30.0,
                           check_same_thread=False)


def check_ledger_file(db: sqlite3.Connection, path: Path) -> None:
    """Every page readable (``quick_check``) and a ledger's entries table present, else refuse."""
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        columns = {row[1] for row in db.execute("PRAGMA table_info(entries)")}
    except sqlite3.DatabaseError as exc:
        raise LedgerFileError(f"{path}: {what_is_wrong(exc)}") from None
    if problems != ["ok"]:
        raise LedgerFileError(f"{path}: ledger is damaged ({_first_line(problems)})")
    if not columns:
        raise LedgerFileError(f"{path}: not a gridctl ledger (no entries table)")
    if not _ENTRY_COLUMNS <= columns:
        raise LedgerFileError(f"{path}: not a gridctl ledger (its entries table is another kind)")


def _first_line(problems: list[str]) -> str:
    """The first thing ``quick_check`` found, as one line (it reports several, over lines)."""
    lines = [ln.strip() for p in problems for ln in p.splitlines() if ln.strip() and not ln.startswith("***")]
    return lines[0] if lines else "unreadable"


def what_is_wrong(exc: sqlite3.Error) -> str:
    """SQLite's complaint in the ledger's words."""
    text = str(exc)
    if "file is not a database" in text:
        return "not a gridctl ledger (not an SQLite database)"
    if "malformed" in text:
        return f"ledger is damaged ({text})"
    return text
