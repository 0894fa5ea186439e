"""Pseudonymous member ids: stable for a key, not reversible without it.

HMAC-SHA256 of ``site id + member id`` under a secret key from the credential store: the same
member has the same pseudonym in every period and every push (so a city can follow a series),
but the id cannot be recovered from it, nor guessed by hashing candidate ids, without the key.
"""

from __future__ import annotations

import hashlib
import hmac

#: Shortest accepted key [characters]: 128 bits of hex, or a passphrase of similar strength.
MIN_KEY_CHARS = 32
#: Hex characters of the HMAC kept in the id (128 bits: no collisions in any block).
PSEUDONYM_HEX_CHARS = 32


class Pseudonymizer:
    """Maps member ids of one site to pseudonyms under ``key``."""

    def __init__(self, key: str, site_id: str) -> None:
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"the pseudonym key must have at least {MIN_KEY_CHARS} characters")
        self._key, self._site_id = key.encode(), site_id

    def __call__(self, member_id: str) -> str:
        message = f"{self._site_id}\n{member_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]
