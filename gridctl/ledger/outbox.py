"""The ledger's outboxes: one per destination, so InfluxDB points and city-platform entities
never mix, and a view of one outbox that :class:`gridctl.sinks.OutboxShipper` ships.

Each target has its own table and table of rejected rows; rows leave only after the
destination acknowledged them.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridctl.ledger.store import Ledger


class OutboxTarget(enum.Enum):
    """Where an outbox's rows go; the value is its table."""

    INFLUXDB = "outbox"  #: line protocol for InfluxDB
    CITYOS = "cityos_outbox"  #: NGSI-LD entities (normalized JSON) for the city data platform

    @property
    def table(self) -> str:
        return self.value

    @property
    def rejected_table(self) -> str:
        return f"{self.value}_rejected"


class OutboxView:
    """One target's outbox of a ledger, with the methods the shipper needs."""

    def __init__(self, ledger: Ledger, target: OutboxTarget) -> None:
        self._ledger, self.target = ledger, target

    def outbox_peek(self, limit: int) -> list[tuple[int, str]]:
        return self._ledger.outbox_peek(limit, self.target)

    def outbox_delete(self, ids: list[int]) -> None:
        self._ledger.outbox_delete(ids, self.target)

    def outbox_backlog(self) -> tuple[int, dt.datetime | None]:
        return self._ledger.outbox_backlog(self.target)

    def outbox_reject(self, row_id: int, reason: str) -> None:
        self._ledger.outbox_reject(row_id, reason, self.target)

    def outbox_rejected(self) -> list[tuple[int, str, str]]:
        return self._ledger.outbox_rejected(self.target)
