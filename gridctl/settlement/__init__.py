"""Settlement of 30-minute P2P periods (pure, Decimal money).

Entry point: :func:`settle_period` (site + :class:`PeriodReadings` -> :class:`PeriodSettlement`).
"""

from gridctl.settlement.model import (
    GRID_CHANNEL,
    ChannelReading,
    MemberLine,
    PeriodChecks,
    PeriodReadings,
    PeriodSettlement,
    Trade,
    link_channel,
)
from gridctl.settlement.settle import MONEY_QUANTUM, settle_period

__all__ = [
    "GRID_CHANNEL", "MONEY_QUANTUM", "ChannelReading", "MemberLine", "PeriodChecks",
    "PeriodReadings", "PeriodSettlement", "Trade", "link_channel", "settle_period",
]
