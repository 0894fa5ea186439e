"""Monthly member statements (invoices) from ledger settlements (pure).

The rounding rule, the only one (docs/statements.md):

1. Every amount starts as the exact ``Decimal`` sum of the month's period entries.
2. Each printed line is rounded once, to whole yen (kWh to the tariff's ``kwh_decimals``), by the
   tariff's mode applied to the **magnitude**: ``floor`` cuts the fraction towards zero, ``ceil``
   raises it away from zero, ``half_up`` rounds halves away from zero. The same magnitude is
   printed whichever way the money flows, so a payout of 3,380.6 JPY prints 3,380, never 3,381 in
   the payer's disfavour.
3. The printed total is the exact total rounded by the same rule. Where the printed lines do not
   add up to it, a rounding line (端数調整 / rounding adjustment) shows the difference, so the
   printed lines always add up to the printed total, to the yen.
4. Derived figures are differences of printed figures: savings = printed grid-only bill - printed
   bill with P2P.
5. Consumption tax is computed once per statement and rate, out of the tax-inclusive total
   subject to that rate (amounts are tax-inclusive, as the tariffs are), by the tariff's
   ``tax_mode`` on the magnitude.

Every document carries the ledger head hash it was made from.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from zoneinfo import ZoneInfo

from gridctl.settlement.model import MemberLine, PeriodSettlement, StatementRules

ZERO = Decimal(0)
#: Rounding of a magnitude: the mode names of the tariff's ``rounding`` block.
_MODES = {"floor": ROUND_DOWN, "half_up": ROUND_HALF_UP, "ceil": ROUND_UP}

JPY, KWH, JPY_PER_KWH = "JPY", "kWh", "JPY/kWh"


@dataclass(frozen=True)
class Issuer:
    """The qualified-invoice issuer printed on every statement."""

    name: str
    registration_number: str
    address: str = ""
    contact: str = ""


@dataclass(frozen=True)
class Party:
    """A member as a statement addresses it: name and contract."""

    member_id: str
    name: str
    contract: str = ""
    contract_number: str = ""


@dataclass(frozen=True)
class InvoiceContext:
    """What a statement needs beyond the ledger: issuer, members, issue date, time zone."""

    issue_date: dt.date
    issuer: Issuer | None = None
    parties: tuple[Party, ...] = ()
    site_name: str = ""
    tz: str = "Asia/Tokyo"

    def party(self, member_id: str) -> Party:
        """The member's party (its id as its name when the site file does not list it)."""
        for party in self.parties:
            if party.member_id == member_id:
                return party
        return Party(member_id, member_id)


@dataclass(frozen=True)
class Line:
    """One labelled value of a document.

    ``value`` is what is printed, as a number where it is one (Decimal, int, date) or text;
    ``exact`` is the unrounded Decimal where rounding changed it; ``unit`` is JPY, kWh, JPY/kWh or ''.
    """

    section: str
    key: str
    label_ja: str
    label_en: str
    value: Decimal | int | str | dt.date
    unit: str = ""
    exact: Decimal | None = None


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
    """A statement or the block summary, ready to render."""

    kind: str  # 'statement' or 'summary'
    member_id: str
    month: str
    lines: tuple[Line, ...]
    days: tuple[DayRow, ...] = field(default=())
    party: Party | None = None
    issuer: Issuer | None = None
    issue_date: dt.date | None = None
    period_first: dt.date | None = None
    period_last: dt.date | None = None
    number: str = ""
    head_hash: str = ""

    def value(self, key: str) -> Decimal | int | str | dt.date:
        """The value of the first line with ``key`` (KeyError if absent)."""
        return self.line(key).value

    def line(self, key: str) -> Line:
        """The first line with ``key`` (KeyError if absent)."""
        for line in self.lines:
            if line.key == key:
                return line
        raise KeyError(key)

    def section(self, name: str) -> tuple[Line, ...]:
        """The lines of one section, in order."""
        return tuple(line for line in self.lines if line.section == name)


def round_with(value: Decimal, places: int, mode: str) -> Decimal:
    """Round the magnitude of ``value`` to ``places`` decimals by ``mode``; the sign is kept."""
    rounded = abs(value).quantize(Decimal(1).scaleb(-places), rounding=_MODES[mode])
    return rounded if value >= 0 else -rounded


def tax_included(total_jpy: Decimal, tax_pct: Decimal, mode: str) -> Decimal:
    """Consumption tax contained in a tax-inclusive total, rounded once [JPY] (sign kept)."""
    return round_with(total_jpy * tax_pct / (100 + tax_pct), 0, mode)


def format_amount(value: Decimal | int | str | dt.date) -> str:
    """A value as printed: thousands separators for numbers, ISO dates, text as is."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return f"{value:,}"
    return value


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """First and last local day of ``YYYY-MM``."""
    first = dt.datetime.strptime(month, "%Y-%m").date()
    following = first.replace(year=first.year + (first.month == 12), month=first.month % 12 + 1)
    return first, following - dt.timedelta(days=1)


def _sum(lines: Sequence[MemberLine], name: str) -> Decimal:
    return sum((getattr(m, name) for m in lines), ZERO)


def _money(section: str, key: str, ja: str, en: str, exact: Decimal, mode: str, sign: int = 1) -> Line:
    printed = sign * round_with(exact, 0, mode)
    return Line(section, key, ja, en, printed, JPY, None if printed == sign * exact else sign * exact)


@dataclass(frozen=True)
class Charges:
    """A member's exact money of a month [JPY], as the statement's charge lines show it.

    ``paid``/``received``: P2P purchases and sales; ``fee``: the platform fee;
    ``wheeling_paid``/``wheeling_received``: grid energy relayed over a member's router, paid at
    the relayer's own import price (docs/settlement-rules.md); ``platform_credit``: what the
    platform covers so no member ends worse off than grid-only.
    """

    paid: Decimal = ZERO
    fee: Decimal = ZERO
    received: Decimal = ZERO
    wheeling_paid: Decimal = ZERO
    wheeling_received: Decimal = ZERO
    platform_credit: Decimal = ZERO

    @classmethod
    def of(cls, lines: Sequence[MemberLine]) -> Charges:
        """The sums of a member's period lines."""
        return cls(*(_sum(lines, name) for name in (
            "p2p_paid_jpy", "fee_jpy", "p2p_received_jpy", "wheeling_paid_jpy", "wheeling_received_jpy",
            "platform_credit_jpy")))

    @property
    def total(self) -> Decimal:
        """What the member owes the block (negative: what it is owed) [JPY], exact."""
        return (self.paid + self.fee - self.received + self.wheeling_paid - self.wheeling_received
                - self.platform_credit)


def charge_lines(charges: Charges, mode: str) -> list[Line]:
    """The invoice lines, the rounding line where one is needed, and the total they add up to.

    Wheeling and platform-credit lines appear only where the month has such money.
    """
    lines = [
        _money("charges", "p2p_paid_jpy", "P2P購入代金", "P2P purchases", charges.paid, mode),
        _money("charges", "fee_jpy", "プラットフォーム手数料", "Platform fee", charges.fee, mode),
        _money("charges", "p2p_received_jpy", "P2P販売代金(差引)", "P2P sales (credited)", charges.received, mode, -1),
    ]
    optional = (
        ("wheeling_paid_jpy", "託送電力代金", "Relayed grid energy", charges.wheeling_paid, 1),
        ("wheeling_received_jpy", "託送電力受取(差引)", "Relayed grid energy (credited)", charges.wheeling_received, -1),
        ("platform_credit_jpy", "プラットフォーム補填(差引)", "Platform credit", charges.platform_credit, -1),
    )
    lines += [_money("charges", key, ja, en, value, mode, sign) for key, ja, en, value, sign in optional if value]
    exact_total = charges.total
    total = round_with(exact_total, 0, mode)
    residue = total - sum((line.value for line in lines), ZERO)  # type: ignore[misc]
    if residue:
        lines.append(Line("charges", "rounding_jpy", "端数調整", "Rounding adjustment", residue, JPY))
    label = ("ご請求額(税込)", "Amount due (tax incl.)") if total >= 0 else ("お支払額(税込)", "Amount we pay you (tax incl.)")
    lines.append(Line("total", "total_payable_jpy", *label, total, JPY, None if total == exact_total else exact_total))
    return lines


def tax_lines(total: Decimal, rules: StatementRules) -> list[Line]:
    """The Japanese tax box: per rate, the tax-inclusive total and the tax it contains (once)."""
    pct = rules.consumption_tax_pct
    return [
        Line("tax", "taxable_total_jpy", f"{pct}%対象(税込)", f"Subject to {pct}% (tax incl.)", total, JPY),
        Line("tax", "consumption_tax_jpy", f"うち消費税({pct}%)", f"of which consumption tax ({pct}%)",
             tax_included(total, pct, rules.tax_mode), JPY),
    ]


def member_statement(
    member_id: str, month: str, periods: Sequence[PeriodSettlement], head_hash: str,
    context: InvoiceContext | None = None,
) -> Document:
    """The monthly statement of one member from the month's current period settlements."""
    context = context or InvoiceContext(issue_date=dt.date.today())
    lines = [p.member(member_id) for p in periods if any(m.member_id == member_id for m in p.members)]
    rules = lines[-1].rules if lines else StatementRules()
    money = Charges.of(lines)
    charges = charge_lines(money, rules.yen_mode)
    total = charges[-1].value
    first, last = month_bounds(month)
    party = context.party(member_id)
    number = f"{month.replace('-', '')}-{member_id}"
    out = _header(party, context, first, last, number, len(lines), sum(1 for p in periods if p.flags))
    out += charges
    out += tax_lines(total, rules)  # type: ignore[arg-type]
    out += _energy_lines(lines, rules)
    out += _price_lines(lines)
    out += _reference_lines(lines, rules.yen_mode)
    out += _counterparty_lines(lines)
    out += [
        Line("reconciliation", "money_check", "金額照合", "Money check",
             f"{_money_sum(money)} = {format_amount(money.total)} JPY (exact; printed {format_amount(total)} JPY)"),
        Line("reconciliation", "ledger_head_sha256", "台帳ハッシュ", "Ledger hash", head_hash),
    ]
    return Document("statement", member_id, month, tuple(out), _days(periods, context.tz, member_id),
                    party, context.issuer, context.issue_date, first, last, number, head_hash)


def _money_sum(money: Charges) -> str:
    """The exact sum behind a member's total, in words a clerk can add up."""
    text = (f"P2P paid {format_amount(money.paid)} + fee {format_amount(money.fee)} - P2P received "
            f"{format_amount(money.received)}")
    if money.wheeling_paid or money.wheeling_received:
        text += (f" + relayed paid {format_amount(money.wheeling_paid)} - relayed received "
                 f"{format_amount(money.wheeling_received)}")
    if money.platform_credit:
        text += f" - platform credit {format_amount(money.platform_credit)}"
    return text


def _header(party: Party, context: InvoiceContext, first: dt.date, last: dt.date, number: str,
            periods: int, flagged: int) -> list[Line]:
    issuer = context.issuer
    out = [
        Line("header", "statement_number", "請求書番号", "Statement number", number),
        Line("header", "issue_date", "発行日", "Issue date", context.issue_date),
        Line("header", "billing_period_first", "請求期間(開始)", "Billing period from", first),
        Line("header", "billing_period_last", "請求期間(終了)", "Billing period to", last),
        Line("header", "member_id", "組合員ID", "Member id", party.member_id),
        Line("header", "member_name", "組合員名", "Member", party.name),
        Line("header", "contract", "契約", "Contract", party.contract),
    ]
    if party.contract_number:
        out.append(Line("header", "contract_number", "契約番号", "Contract number", party.contract_number))
    if issuer is not None:
        out += [
            Line("header", "issuer_name", "発行者", "Issuer", issuer.name),
            Line("header", "registration_number", "登録番号", "Registration number", issuer.registration_number),
        ]
    out += [
        Line("header", "periods", "精算コマ数", "Settled periods", periods),
        Line("header", "flagged_periods", "要確認コマ数", "Flagged periods", flagged),
    ]
    return out


def _energy_lines(lines: Sequence[MemberLine], rules: StatementRules) -> list[Line]:
    def kwh(key: str, ja: str, en: str) -> Line:
        exact = _sum(lines, key)
        printed = round_with(exact, rules.kwh_decimals, rules.kwh_mode)
        return Line("energy", key, ja, en, printed, KWH, None if printed == exact else exact)

    return [
        kwh("p2p_bought_kwh", "P2P購入電力量", "P2P energy bought"),
        kwh("p2p_sold_kwh", "P2P販売電力量", "P2P energy sold"),
        kwh("grid_import_kwh", "系統受電電力量", "Grid import"),
        kwh("grid_export_kwh", "系統送電電力量", "Grid export"),
    ]


def _price_lines(lines: Sequence[MemberLine]) -> list[Line]:
    """Tariff id@version and each unit price used with the grid energy at it; mean P2P prices."""
    imports: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    exports: dict[tuple[str, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for m in lines:
        imports[(m.import_tariff, m.import_price_jpy_per_kwh)] += m.grid_import_kwh
        if m.export_tariff:
            exports[(m.export_tariff, m.export_price_jpy_per_kwh)] += m.grid_export_kwh
    out = []
    for kind, ja, en, table in (("import", "受電", "import", imports), ("export", "送電", "export", exports)):
        for (tariff, price), kwh in sorted(table.items()):
            if kwh:
                out.append(Line("prices", f"{kind}_price:{tariff}:{price}", f"系統{ja}単価",
                                f"Grid {en} price {tariff}, {format_amount(kwh)} kWh", price, JPY_PER_KWH))
    bought, sold = _sum(lines, "p2p_bought_kwh"), _sum(lines, "p2p_sold_kwh")
    if bought:
        out.append(Line("prices", "p2p_buy_price", "P2P平均購入単価", "Mean P2P purchase price",
                        (_sum(lines, "p2p_paid_jpy") / bought).quantize(Decimal("0.01")), JPY_PER_KWH))
    if sold:
        out.append(Line("prices", "p2p_sell_price", "P2P平均販売単価", "Mean P2P sale price",
                        (_sum(lines, "p2p_received_jpy") / sold).quantize(Decimal("0.01")), JPY_PER_KWH))
    return out


def _reference_lines(lines: Sequence[MemberLine], mode: str) -> list[Line]:
    """What the utility bills and the grid-only comparison; savings = printed difference."""
    grid_only = _money("reference", "grid_only_jpy", "系統のみの場合の請求額", "Grid-only bill",
                       _sum(lines, "grid_only_jpy"), mode)
    bill = _money("reference", "bill_jpy", "P2P取引後の請求額", "Bill with P2P", _sum(lines, "bill_jpy"), mode)
    return [
        _money("reference", "grid_import_jpy", "系統電力料金(参考)", "Grid energy charge (reference)",
               _sum(lines, "grid_import_jpy"), mode),
        _money("reference", "grid_export_jpy", "系統買取額(参考)", "Grid buy-back (reference)",
               _sum(lines, "grid_export_jpy"), mode),
        grid_only,
        bill,
        Line("reference", "savings_jpy", "削減額", "Savings versus grid-only",
             grid_only.value - bill.value, JPY),  # type: ignore[operator]
    ]


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
        out += [
            Line("counterparty", f"{party}:bought_kwh", f"{party}からの購入", f"bought from {party}",
                 b.quantize(Decimal("0.001")), KWH),
            Line("counterparty", f"{party}:sold_kwh", f"{party}への販売", f"sold to {party}",
                 s.quantize(Decimal("0.001")), KWH),
            Line("counterparty", f"{party}:paid_jpy", f"{party}への支払", f"paid to {party}", p, JPY),
            Line("counterparty", f"{party}:received_jpy", f"{party}からの受取", f"received from {party}", r, JPY),
        ]
    return out


def days(periods: Sequence[PeriodSettlement], tz: str, member_id: str | None) -> tuple[DayRow, ...]:
    """P2P volume and money per local day, of one member or (``None``) of the block."""
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


_days = days
