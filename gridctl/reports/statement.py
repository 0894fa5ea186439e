"""Monthly statements per member and the block summary, made from ledger settlements (pure).

Sums are exact ``Decimal`` sums of the period entries; rounding happens once, here, per
statement: monthly kWh by the tariff's ``kwh_decimals``/``kwh_mode``, yen totals by
``yen_mode``, and the consumption tax contained in the tax-inclusive total once per statement
by ``tax_mode`` (domain.md). Every document carries a reconciliation (energy in = out, money in =
out) and the ledger head hash it was made from.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from gridctl.settlement.model import MemberLine, PeriodSettlement, StatementRules

ZERO = Decimal(0)
_MODES = {"floor": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "ceil": ROUND_CEILING}


@dataclass(frozen=True)
class Line:
    """One labelled value of a document (``value`` is Decimal, int or str; ``unit`` may be '')."""

    section: str
    key: str
    label_ja: str
    label_en: str
    value: Decimal | int | str
    unit: str = ""


@dataclass(frozen=True)
class DayRow:
    """P2P activity of one local day: volume bought [kWh], money [JPY], mean price [JPY/kWh]."""

    day: dt.date
    bought_kwh: Decimal
    sold_kwh: Decimal
    paid_jpy: Decimal
    mean_price_jpy_per_kwh: Decimal | None


@dataclass(frozen=True)
class Document:
    """A statement or summary ready to render: title, labelled lines, daily rows."""

    kind: str  # 'statement' or 'summary'
    member_id: str
    month: str
    lines: tuple[Line, ...]
    days: tuple[DayRow, ...] = field(default=())

    def value(self, key: str) -> Decimal | int | str:
        """The value of the first line with ``key`` (KeyError if absent)."""
        for line in self.lines:
            if line.key == key:
                return line.value
        raise KeyError(key)


def round_with(value: Decimal, places: int, mode: str) -> Decimal:
    """Round ``value`` to ``places`` decimals by ``mode`` (floor, half_up or ceil)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=_MODES[mode])


def tax_included(total_jpy: Decimal, tax_pct: Decimal, mode: str) -> Decimal:
    """Consumption tax contained in a tax-inclusive total, rounded once [JPY] (sign kept)."""
    tax = abs(total_jpy) * tax_pct / (100 + tax_pct)
    rounded = round_with(tax, 0, mode)
    return rounded if total_jpy >= 0 else -rounded


def _sum(lines: Sequence[MemberLine], name: str) -> Decimal:
    return sum((getattr(m, name) for m in lines), ZERO)


def member_statement(
    member_id: str, month: str, periods: Sequence[PeriodSettlement], head_hash: str, tz: str = "Asia/Tokyo"
) -> Document:
    """The monthly statement of one member from the month's current period settlements."""
    lines = [p.member(member_id) for p in periods if any(m.member_id == member_id for m in p.members)]
    rules = lines[-1].rules if lines else StatementRules()
    kwh = lambda v: round_with(v, rules.kwh_decimals, rules.kwh_mode)  # noqa: E731
    yen = lambda v: round_with(v, 0, rules.yen_mode)  # noqa: E731
    paid, fee, received = _sum(lines, "p2p_paid_jpy"), _sum(lines, "fee_jpy"), _sum(lines, "p2p_received_jpy")
    payable = paid + fee - received
    bill, counterfactual = _sum(lines, "bill_jpy"), _sum(lines, "grid_only_jpy")
    total = yen(payable)
    out = [
        Line("header", "member", "組合員", "Member", member_id),
        Line("header", "month", "対象月", "Month", month),
        Line("header", "periods", "精算コマ数", "Settled periods", len(lines)),
        Line("header", "flagged_periods", "要確認コマ数", "Flagged periods", sum(1 for p in periods if p.flags)),
        Line("energy", "p2p_bought_kwh", "P2P購入電力量", "P2P energy bought", kwh(_sum(lines, "p2p_bought_kwh")), "kWh"),
        Line("energy", "p2p_sold_kwh", "P2P販売電力量", "P2P energy sold", kwh(_sum(lines, "p2p_sold_kwh")), "kWh"),
        Line("energy", "grid_import_kwh", "系統受電電力量", "Grid import", kwh(_sum(lines, "grid_import_kwh")), "kWh"),
        Line("energy", "grid_export_kwh", "系統送電電力量", "Grid export", kwh(_sum(lines, "grid_export_kwh")), "kWh"),
        Line("money", "p2p_paid_jpy", "P2P購入代金", "P2P purchases", yen(paid), "JPY"),
        Line("money", "fee_jpy", "プラットフォーム手数料", "Platform fee", yen(fee), "JPY"),
        Line("money", "p2p_received_jpy", "P2P販売代金", "P2P sales", yen(received), "JPY"),
        Line("money", "grid_import_jpy", "系統電力料金(参考)", "Grid energy charge (reference)", yen(_sum(lines, "grid_import_jpy")), "JPY"),
        Line("money", "grid_export_jpy", "系統買取額(参考)", "Grid buy-back (reference)", yen(_sum(lines, "grid_export_jpy")), "JPY"),
        Line("money", "grid_only_jpy", "系統のみの場合の請求額", "Grid-only bill", yen(counterfactual), "JPY"),
        Line("money", "bill_jpy", "P2P取引後の請求額", "Bill with P2P", yen(bill), "JPY"),
        Line("money", "savings_jpy", "削減額", "Savings versus grid-only", yen(counterfactual - bill), "JPY"),
        Line("total", "total_payable_jpy", "P2P精算額(税込)", "P2P amount payable (tax incl.)", total, "JPY"),
        Line("total", "consumption_tax_jpy", f"うち消費税({rules.consumption_tax_pct}%)",
             f"of which consumption tax ({rules.consumption_tax_pct}%)",
             tax_included(total, rules.consumption_tax_pct, rules.tax_mode), "JPY"),
    ]
    out += _counterparty_lines(lines)
    out += _member_reconciliation(paid, fee, received, payable, head_hash)
    return Document("statement", member_id, month, tuple(out), _days(periods, tz, member_id))


def _counterparty_lines(lines: Sequence[MemberLine]) -> list[Line]:
    totals: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])
    for line in lines:
        for t in line.trades:
            row = totals[t.counterparty]
            row[0] += t.bought_kwh
            row[1] += t.sold_kwh
            row[2] += t.paid_jpy
            row[3] += t.received_jpy
    out = []
    for party in sorted(totals):
        b, s, p, r = totals[party]
        section = f"counterparty:{party}"
        out += [
            Line(section, "bought_kwh", f"{party}からの購入", f"bought from {party}", b.quantize(Decimal("0.001")), "kWh"),
            Line(section, "sold_kwh", f"{party}への販売", f"sold to {party}", s.quantize(Decimal("0.001")), "kWh"),
            Line(section, "paid_jpy", f"{party}への支払", f"paid to {party}", p, "JPY"),
            Line(section, "received_jpy", f"{party}からの受取", f"received from {party}", r, "JPY"),
        ]
    return out


def _member_reconciliation(paid: Decimal, fee: Decimal, received: Decimal, payable: Decimal, head: str) -> list[Line]:
    return [
        Line("reconciliation", "exact_payable_jpy", "精算額(端数処理前)", "Amount payable before rounding", payable, "JPY"),
        Line("reconciliation", "money_check", "金額照合", "Money check",
             f"paid {paid} + fee {fee} - received {received} = {payable} JPY"),
        Line("reconciliation", "ledger_head_sha256", "台帳ハッシュ", "Ledger hash", head),
    ]


def block_summary(month: str, periods: Sequence[PeriodSettlement], head_hash: str, tz: str = "Asia/Tokyo") -> Document:
    """The block's monthly summary: totals, prices, checks and the reconciliation line."""
    all_lines = [m for p in periods for m in p.members]
    sold, bought = sum((p.sold_kwh for p in periods), ZERO), sum((p.bought_kwh for p in periods), ZERO)
    losses = sum((p.losses_kwh for p in periods), ZERO)
    paid, fee = _sum(all_lines, "p2p_paid_jpy"), _sum(all_lines, "fee_jpy")
    received = _sum(all_lines, "p2p_received_jpy")
    failed = [p for p in periods if not p.checks.ok]
    energy_ok, money_ok = sold == bought + losses, paid + fee == received + fee
    mean = (paid / bought).quantize(Decimal("0.0001")) if bought else ZERO
    out = [
        Line("header", "month", "対象月", "Month", month),
        Line("header", "periods", "精算コマ数", "Settled periods", len(periods)),
        Line("header", "flagged_periods", "要確認コマ数", "Flagged periods", sum(1 for p in periods if p.flags)),
        Line("header", "failed_periods", "検証不合格コマ数", "Periods failing checks", len(failed)),
        Line("energy", "sold_kwh", "P2P送電量", "P2P energy sold", sold, "kWh"),
        Line("energy", "bought_kwh", "P2P受電量", "P2P energy bought", bought, "kWh"),
        Line("energy", "losses_kwh", "連系線損失", "Link losses", losses, "kWh"),
        Line("money", "paid_jpy", "P2P支払総額", "P2P paid by buyers", paid, "JPY"),
        Line("money", "fee_jpy", "手数料総額", "Platform fees", fee, "JPY"),
        Line("money", "received_jpy", "P2P受取総額", "P2P received by sellers", received, "JPY"),
        Line("money", "savings_jpy", "組合員削減額合計", "Members' savings versus grid-only",
             _sum(all_lines, "grid_only_jpy") - _sum(all_lines, "bill_jpy"), "JPY"),
        Line("money", "mean_price_jpy_per_kwh", "平均P2P価格", "Mean P2P price", mean, "JPY/kWh"),
        Line("reconciliation", "energy_check", "電力量照合", "Energy in = out",
             f"sold {sold} = bought {bought} + losses {losses} kWh: {'OK' if energy_ok else 'MISMATCH'}"),
        Line("reconciliation", "money_check", "金額照合", "Money in = out",
             # the same figures as the lines above, so a clerk can add them up by hand
             f"buyers pay {paid} + fee {fee} = sellers get {received} + fee {fee} JPY: "
             f"{'OK' if money_ok else 'MISMATCH'}"),
        Line("reconciliation", "ledger_head_sha256", "台帳ハッシュ", "Ledger hash", head_hash),
    ]
    return Document("summary", "", month, tuple(out), _days(periods, tz, None))


def _days(periods: Sequence[PeriodSettlement], tz: str, member_id: str | None) -> tuple[DayRow, ...]:
    zone = ZoneInfo(tz)
    acc: dict[dt.date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for p in periods:
        day = p.start_utc.astimezone(zone).date()
        lines = [m for m in p.members if member_id is None or m.member_id == member_id]
        acc[day][0] += _sum(lines, "p2p_bought_kwh")
        acc[day][1] += _sum(lines, "p2p_sold_kwh")
        acc[day][2] += _sum(lines, "p2p_paid_jpy")
    return tuple(
        DayRow(day, b, s, p, (p / b).quantize(Decimal("0.01")) if b else None)
        for day, (b, s, p) in sorted(acc.items())
    )
