"""Seals and anchors: the ledger's head held where a rebuilt or truncated chain cannot follow.

The hash chain proves that no entry was changed *unless the whole chain after it was
recomputed*, which anyone with the file can do. Two things close that gap:

- **Seals** (in the file, need a key): a ledger opened with a key appends, in every write
  transaction that added entries, a row ``(seq, head, mac)`` to the append-only ``seals`` table:
  the sequence number and hash of the last entry and ``HMAC-SHA256(key, "seq|head")``. Someone
  without the key can neither seal a rebuilt chain nor move the last seal. Removing the
  newest entries *and* their seals is not visible in the file: that is what anchors are for.
- **Anchors** (outside the file): a ``(seq, sha256)`` pair of the head held by someone else
  (the ``ledger_head`` points in InfluxDB, a printed statement, a clerk's note). ``settle
  verify --anchor SEQ:SHA256`` checks that entry SEQ still exists with that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class LedgerKeyError(ValueError):
    """A sealing key that cannot be used (missing file, empty)."""


@dataclass(frozen=True)
class Seal:
    """One stored seal: the last entry's ``seq`` and ``head`` hash when a transaction committed."""

    seq: int
    head: str
    mac: str


@dataclass(frozen=True)
class Anchor:
    """A head held outside the ledger: entry ``seq`` had hash ``sha256``."""

    seq: int
    sha256: str


def seal_mac(key: bytes, seq: int, head: str) -> str:
    """``HMAC-SHA256(key, "seq|head")`` as hex."""
    return hmac.new(key, f"{seq}|{head}".encode(), hashlib.sha256).hexdigest()


def key_from_text(text: str | None) -> bytes | None:
    """A key from a credential's text (surrounding whitespace dropped); None when blank."""
    value = (text or "").strip()
    return value.encode() if value else None


def read_key_file(path: Path) -> bytes:
    """The key in ``path`` (its stripped text), or a one-line :class:`LedgerKeyError`."""
    try:
        key = key_from_text(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerKeyError(f"{path}: cannot read the ledger key: {getattr(exc, 'strerror', None) or exc}") from None
    if key is None:
        raise LedgerKeyError(f"{path}: the ledger key file is empty")
    return key


_ANCHOR = re.compile(r"(\d+):([0-9a-f]{64})")


def parse_anchor(text: str) -> Anchor:
    """``SEQ:SHA256`` (a decimal entry number and 64 hex digits) as an :class:`Anchor`."""
    match = _ANCHOR.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"--anchor '{text}' is not SEQ:SHA256 (an entry number and 64 hex digits)")
    return Anchor(int(match.group(1)), match.group(2))


def check_seals(seals: Sequence[Seal], hashes: Mapping[int, str], head_seq: int, key: bytes) -> str | None:
    """The first problem with the seals under ``key``, or None.

    Every seal must carry the right MAC and the hash its entry has now, seals must not go
    backwards, and the last seal must be at the head: entries after it were written (or
    rebuilt) by someone without the key.
    """
    if not seals:
        return "head not sealed: the ledger has no seals, but a key was given"
    last = 0
    for seal in seals:
        if not hmac.compare_digest(seal_mac(key, seal.seq, seal.head), seal.mac):
            return f"seal at entry {seal.seq}: MAC does not match (forged, or another key)"
        if seal.seq <= last:
            return f"seal at entry {seal.seq}: seals out of order"
        if hashes.get(seal.seq) != seal.head:
            what = "no longer exists" if seal.seq not in hashes else "has another hash now (chain rebuilt)"
            return f"seal at entry {seal.seq}: the sealed entry {what}"
        last = seal.seq
    if last != head_seq:
        return f"entries {last + 1}..{head_seq} are not sealed (written or rebuilt without the key)"
    return None


def check_anchors(anchors: Sequence[Anchor], hashes: Mapping[int, str]) -> str | None:
    """The first anchor the ledger does not hold, or None."""
    for anchor in anchors:
        found = hashes.get(anchor.seq)
        if found is None:
            return f"anchor {anchor.seq}:{anchor.sha256[:12]}...: entry {anchor.seq} is missing (entries removed)"
        if found != anchor.sha256:
            return f"anchor {anchor.seq}:{anchor.sha256[:12]}...: entry {anchor.seq} has another hash (chain rebuilt)"
    return None
