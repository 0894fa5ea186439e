"""The block's monthly summary: energy in = out, and the members' printed totals reconciled to the fees.

Each member's exact total is P2P paid + fee - P2P received + relayed paid - relayed received -
platform credit; over the block the P2P and relayed money cancel (what buyers pay, sellers get),
so the exact member totals add up to the exact platform fees less the platform's credits. Printed
totals are rounded per member (statement.py), so their sum differs from the printed net fees by a
rounding residue, shown on its own line: sum of printed member totals = printed fees - printed
credits + residue.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from gridctl.reports.statement import (
    JPY,
    JPY_PER_KWH,
    KWH,
    ZERO,
    Document,
    InvoiceContext,
    Line,
    Charges,
    charge_lines,
    days,
    format_amount,
    month_bounds,
    round_with,
)
from gridctl.settlement.model import MemberLine, PeriodSettlement, StatementRules


def _sum(lines: Sequence[MemberLine], name: str) -> Decimal:
    return sum((getattr(m, name) for m in lines), ZERO)


def block_summary(
    month: str, periods: Sequence[PeriodSettlement], head_hash: str, context: InvoiceContext | None = None
) -> Document:
    """The block's monthly summary: totals, member reconciliation, checks and the ledger hash."""
    import datetime as dt

    context = context or InvoiceContext(issue_date=dt.date.today())
    all_lines = [m for p in periods for m in p.members]
    rules = all_lines[-1].rules if all_lines else StatementRules()
    sold, bought = sum((p.sold_kwh for p in periods), ZERO), sum((p.bought_kwh for p in periods), ZERO)
    losses = sum((p.losses_kwh for p in periods), ZERO)
    paid, fee = _sum(all_lines, "p2p_paid_jpy"), _sum(all_lines, "fee_jpy")
    received = _sum(all_lines, "p2p_received_jpy")
    w_paid, w_received = _sum(all_lines, "wheeling_paid_jpy"), _sum(all_lines, "wheeling_received_jpy")
    credit = _sum(all_lines, "platform_credit_jpy")
    p2p_bought = _sum(all_lines, "p2p_bought_kwh")
    failed = sum(1 for p in periods if not p.checks.ok)
    energy_ok, money_ok = sold == bought + losses, paid == received and w_paid == w_received
    first, last = month_bounds(month)
    out = [
        Line("header", "issue_date", "発行日", "Issue date", context.issue_date),
        Line("header", "billing_period_first", "対象期間(開始)", "Period from", first),
        Line("header", "billing_period_last", "対象期間(終了)", "Period to", last),
        Line("header", "periods", "精算コマ数", "Settled periods", len(periods)),
        Line("header", "flagged_periods", "要確認コマ数", "Flagged periods", sum(1 for p in periods if p.flags)),
        Line("header", "failed_periods", "検証不合格コマ数", "Periods failing checks", failed),
        Line("energy", "sold_kwh", "連系線送電量", "Energy sent on the links", sold, KWH),
        Line("energy", "bought_kwh", "連系線受電量", "Energy received from the links", bought, KWH),
        Line("energy", "losses_kwh", "連系線損失", "Link losses", losses, KWH),
    ]
    wheeled = sum((p.wheeled_kwh for p in periods), ZERO)
    if wheeled:
        out.append(Line("energy", "wheeled_kwh", "うち託送(系統電力の中継)", "of which relayed grid energy",
                        wheeled, KWH))
    out += [
        Line("money", "paid_jpy", "P2P支払総額", "P2P paid by buyers", paid, JPY),
        Line("money", "received_jpy", "P2P受取総額", "P2P received by sellers", received, JPY),
        Line("money", "fee_jpy", "手数料総額", "Platform fees", fee, JPY),
        Line("money", "mean_price_jpy_per_kwh", "平均P2P価格", "Mean P2P price",
             (paid / p2p_bought).quantize(Decimal("0.01")) if p2p_bought else ZERO, JPY_PER_KWH),
    ]
    if w_paid or w_received or credit:
        out += [
            Line("money", "wheeling_paid_jpy", "託送電力代金(受電側支払)", "Relayed grid energy paid by receivers",
                 w_paid, JPY),
            Line("money", "wheeling_received_jpy", "託送電力代金(中継側受取)", "Relayed grid energy received by relayers",
                 w_received, JPY),
            Line("money", "platform_credit_jpy", "プラットフォーム補填総額", "Platform credits", credit, JPY),
        ]
    out += _member_totals(periods, context, rules.yen_mode, fee, credit)
    out += [
        Line("reconciliation", "energy_check", "電力量照合", "Energy in = out",
             f"sold {format_amount(sold)} = bought {format_amount(bought)} + losses {format_amount(losses)} kWh: "
             f"{'OK' if energy_ok else 'MISMATCH'}"),
        Line("reconciliation", "money_check", "金額照合", "Money in = out",
             # the same figures as the lines above, so a clerk can add them up by hand
             f"buyers pay {format_amount(paid)} + fee {format_amount(fee)} = sellers get {format_amount(received)} "
             f"+ fee {format_amount(fee)} JPY: "
             f"{'OK' if money_ok else 'MISMATCH'}"),
        Line("reconciliation", "ledger_head_sha256", "台帳ハッシュ", "Ledger hash", head_hash),
    ]
    return Document("summary", "", month, tuple(out), days(periods, context.tz, None),
                    issuer=context.issuer, issue_date=context.issue_date, period_first=first,
                    period_last=last, number=f"{month.replace('-', '')}-summary", head_hash=head_hash)


def _member_totals(periods: Sequence[PeriodSettlement], context: InvoiceContext, mode: str,
                   fee: Decimal, credit: Decimal) -> list[Line]:
    """Each member's printed total as on its statement, their sum, the printed fees (less the
    platform's credits, where there are any) and the residue."""
    members = sorted({m.member_id for p in periods for m in p.members})
    out = []
    savings = ZERO
    for member in members:
        mine = [m for p in periods for m in p.members if m.member_id == member]
        rules = mine[-1].rules
        total = charge_lines(Charges.of(mine), rules.yen_mode)[-1]
        grid_only = round_with(_sum(mine, "grid_only_jpy"), 0, rules.yen_mode)
        savings += grid_only - round_with(_sum(mine, "bill_jpy"), 0, rules.yen_mode)
        name = context.party(member).name
        out.append(Line("members", f"member:{member}", name, member, total.value, JPY, total.exact))
    members_sum = sum((line.value for line in out), ZERO)  # type: ignore[misc]
    printed_fee = round_with(fee, 0, mode)
    printed_credit = round_with(credit, 0, mode)
    residue = members_sum - printed_fee + printed_credit
    out += [
        Line("members_total", "members_total_jpy", "組合員精算額合計", "Sum of members' totals", members_sum, JPY),
        Line("members_total", "printed_fee_jpy", "手数料総額(円未満処理後)", "Platform fees (rounded)", printed_fee, JPY,
             None if printed_fee == fee else fee),
    ]
    if credit:
        out.append(Line("members_total", "printed_credit_jpy", "プラットフォーム補填総額(差引)",
                        "Platform credits (rounded, deducted)", -printed_credit, JPY,
                        None if printed_credit == credit else -credit))
    credit_text = f" - credits {format_amount(printed_credit)}" if credit else ""
    out += [
        Line("members_total", "rounding_residue_jpy", "端数差額",
             "Rounding residue (sum - fees + credits)" if credit else "Rounding residue (sum - fees)", residue, JPY),
        Line("members_total", "savings_jpy", "組合員削減額合計", "Members' savings versus grid-only", savings, JPY),
        Line("reconciliation", "members_check", "組合員精算照合", "Members reconcile",
             f"members {format_amount(members_sum)} = fees {format_amount(printed_fee)}{credit_text} + residue "
             f"{format_amount(residue)} JPY"),
    ]
    return out
