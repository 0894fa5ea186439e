"""How an attacker (or a test) rewrites a ledger's hash chain after changing entries through sqlite3."""

import sqlite3

from gridctl.ledger.store import GENESIS_HASH, entry_hash


def rebuild_chain(db: sqlite3.Connection) -> None:
    """Recompute every entry's ``prev_hash`` and ``hash`` in sequence order (the append-only
    update trigger must be dropped first)."""
    prev = GENESIS_HASH
    rows = db.execute("SELECT seq, period_start_utc, revision, kind, member_id, sign, body FROM entries ORDER BY seq")
    for seq, period, rev, kind, member, sign, body in rows.fetchall():
        digest = entry_hash(prev, period, rev, kind, member, sign, body)
        db.execute("UPDATE entries SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
