"""Settle one 30-minute period: metered counters + tariffs + market rules -> PeriodSettlement.

Pure: no clock, no I/O, no logging; data problems become flags and failed checks in the result.

How a period is settled
-----------------------
1. Energy. Grid import/export per member (``I``, ``E``) are grid-meter counter deltas. Each
   router link is metered at both ends: what leaves one router (leg outflow) and arrives at the
   other (leg inflow); the difference is the link's metered loss. A member's net link position
   is its link inflow minus outflow: positive means it bought, negative that it sold (energy
   passing through a router cancels). So ``sum(sold) = sum(bought) + losses`` exactly. A
   missing leg at one end is estimated from the other end and the link efficiency, and flagged.
2. Own energy and wheeling (:mod:`gridctl.settlement.wheeling`). A member's own net surplus is
   ``s = E - I + sold - bought``; only ``sold_own = min(sold, max(0, s))`` is a P2P sale. The
   rest, ``wheeled = sold - sold_own``, is grid energy relayed: settled as wheeling at the
   relayer's own import price (capped at the receiver's), never priced as a sale, never in the
   fee. The P2P pool (sales, SDR supply/demand, auction asks) holds own-surplus kWh only.
3. Prices. ``lambda_b`` and ``lambda_s`` of a member are its own marginal tariff prices. The
   block prices the mechanism on *delivered* kWh: ``lambda_b' = min(buyers' lambda_b) - fee``
   and ``lambda_s' = max over sellers of lambda_s * sent/delivered`` (a seller's export value
   per kWh that reached a buyer). SDR and MMR use G and D of the members' net positions; the
   auction uses bids ``lambda_b - fee`` and asks ``lambda_s * sent/delivered`` per member,
   clamped to floor and cap and then into ``[lambda_s', lambda_b']``.
   Any price in ``[lambda_s', lambda_b']`` leaves every member at least as well off as the grid.
   When ``lambda_s' > lambda_b'`` (``no_gains_from_trade``) the fee is waived first
   (``fee_waived``); if the band is still empty, buyers pay their lowest import price and the
   platform credits each seller up to its export value (``platform_credit_jpy``).
4. Counterparties. The router metering says who supplied whom: energy is traced from sellers to
   buyers along the links (proportional sharing, :mod:`gridctl.settlement.tracing`). Where that
   is impossible (a link used both ways in one period, a loop of flows) the pooled energy is
   split pro rata and the period is flagged ``counterparty_pro_rata``.
5. Money. Buyers pay ``price * bought`` plus ``fee * bought``; each buyer's payment goes to the
   sellers its energy came from, in proportion (largest-remainder rounding to the money
   quantum), so paid = received + fee holds exactly and sellers carry their links' losses.
   ``bill = grid import - grid export + P2P paid + fee - P2P received + wheeling paid -
   wheeling received - platform credit`` [JPY].

The promise (individual rationality), checked in every period and again by ``settle verify``:
no member's bill exceeds the grid-only bill of its **own net metered energy**,

    ``grid_only_jpy = lambda_b * (I + bought - wheeled) - lambda_s * (E + sold_own)``

(each product rounded to the money quantum), within one money quantum per member line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from gridctl.config.site import SiteConfig
from gridctl.config.tariffs import ExportTariff, ImportTariff
from gridctl.settlement.allocation import allocate
from gridctl.settlement.checks import check_period
from gridctl.settlement.mechanisms import Order, p2p_price, sdr_ratio, uniform_price_auction
from gridctl.settlement.model import (
    FIXED_POINT_MISSING_FLAG,
    GRID_CHANNEL,
    MemberLine,
    PeriodReadings,
    PeriodSettlement,
    StatementRules,
    Trade,
    link_channel,
)
from gridctl.settlement.tracing import LinkFlow, trace
from gridctl.settlement.wheeling import Split, Wheeling, settle_wheeling, split_link_energy
from gridctl.tariffs import (
    MarketTerms,
    export_price_jpy_per_kwh,
    fuel_adjustment_defaulted,
    import_price_jpy_per_kwh,
    market_in_force,
    tariff_version,
)

ZERO = Decimal(0)
#: Money quantum of a ledger entry [JPY]; statements round to whole yen later.
MONEY_QUANTUM = Decimal("0.0001")
#: Price quantum [JPY/kWh].
PRICE_QUANTUM = Decimal("0.0001")
#: Energy quantum of estimates and counterparty splits [kWh].
ENERGY_QUANTUM = Decimal("0.000001")
#: Quantum of the stored supply-demand ratio [-].
RATIO_QUANTUM = Decimal("0.000001")


@dataclass(frozen=True)
class _Prices:
    import_jpy_per_kwh: Decimal
    export_jpy_per_kwh: Decimal
    import_tariff: str
    export_tariff: str
    rules: StatementRules
    #: ``fuel_adjustment_default:<tariff>@<version>:<YYYY-MM>`` when the month is missing, else ''.
    fuel_default_flag: str = ""


@dataclass
class _Energy:
    grid_import_kwh: Decimal = ZERO
    grid_export_kwh: Decimal = ZERO
    link_in_kwh: Decimal = ZERO
    link_out_kwh: Decimal = ZERO

    @property
    def bought_kwh(self) -> Decimal:
        return max(ZERO, self.link_in_kwh - self.link_out_kwh)

    @property
    def sold_kwh(self) -> Decimal:
        return max(ZERO, self.link_out_kwh - self.link_in_kwh)

    @property
    def net_surplus_kwh(self) -> Decimal:
        """Own generation minus consumption [kWh], positive when the member has a surplus."""
        return self.grid_export_kwh - self.grid_import_kwh + self.link_out_kwh - self.link_in_kwh


def q_money(value: Decimal) -> Decimal:
    """Round to the ledger money quantum (half up) [JPY]."""
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


def settle_period(
    site: SiteConfig,
    readings: PeriodReadings,
    month_to_date_import_kwh: dict[str, Decimal] | None = None,
) -> PeriodSettlement:
    """Settle one period of ``site`` from its metered ``readings``.

    Parameters
    ----------
    site : SiteConfig
        Validated site: members, links, tariffs and market rules.
    readings : PeriodReadings
        Counters at the period start and end, per member channel.
    month_to_date_import_kwh : dict, optional
        Grid import of each member this month before the period [kWh]; selects the tier.

    Returns
    -------
    PeriodSettlement
        Per-member lines, block totals, checks and flags.
    """
    mtd = month_to_date_import_kwh or {}
    flags: list[str] = []
    terms = market_in_force(site, readings.start_utc)
    prices = {n.id: _member_prices(site, n.id, readings.start_utc, mtd.get(n.id, ZERO)) for n in site.nodes}
    energy, losses_kwh, flows = _metered_energy(site, readings, flags)
    flags.extend(_fixed_point_flags(readings))
    flags.extend(_price_flags(prices))
    sold = {m: e.sold_kwh for m, e in energy.items() if e.sold_kwh > 0}
    bought = {m: e.bought_kwh for m, e in energy.items() if e.bought_kwh > 0}
    total_sold = sum(sold.values(), ZERO)
    total_bought = sum(bought.values(), ZERO)
    supply = sum((max(ZERO, e.net_surplus_kwh) for e in energy.values()), ZERO)
    demand = sum((max(ZERO, -e.net_surplus_kwh) for e in energy.values()), ZERO)
    split = split_link_energy(sold, bought, {m: e.net_surplus_kwh for m, e in energy.items()},
                              _shares(flows, sold, bought, flags))
    pool = split.pool_shares
    delivered = {s_: sum((row.get(s_, ZERO) for row in pool.values()), ZERO) for s_ in split.own_sold}
    clearing = _clearing_price(terms, prices, split, delivered, supply, demand, flags)
    if total_sold > 0 and total_bought == 0:
        flags.append("p2p_sent_but_not_received")
    trades = _trades(clearing.price, split.own_sold, split.pool_bought, pool)
    wheeling = settle_wheeling(split, {m: p.import_jpy_per_kwh for m, p in prices.items()})
    trades = _with_wheeling(trades, wheeling)
    credits = _seller_credits(prices, split, trades, clearing.top_up_sellers) | wheeling.credit_jpy
    flags.extend(f"wheeling_shortfall:{m}" for m in sorted(wheeling.credit_jpy))
    lines = tuple(
        _member_line(n.id, prices[n.id], energy[n.id], split, trades.get(n.id, ()), clearing.fee,
                     credits.get(n.id, ZERO))
        for n in site.nodes
    )
    pool_sold = sum(split.own_sold.values(), ZERO)
    pool_bought = sum(split.pool_bought.values(), ZERO)
    seller_price = (clearing.price * pool_bought / pool_sold) if pool_sold > 0 else clearing.price
    checks = check_period(lines, total_sold, total_bought, losses_kwh, MONEY_QUANTUM)
    return PeriodSettlement(
        start_utc=readings.start_utc,
        mechanism=terms.mechanism,
        price_jpy_per_kwh=clearing.price,
        seller_price_jpy_per_kwh=seller_price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
        fee_jpy_per_kwh=clearing.fee,
        supply_demand_ratio=_ratio(supply, demand),
        sold_kwh=total_sold,
        bought_kwh=total_bought,
        losses_kwh=losses_kwh,
        members=lines,
        checks=checks,
        flags=tuple(flags),
        readings_sha256=readings.sha256(),
        buy_limit_jpy_per_kwh=clearing.lam_b.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
        sell_limit_jpy_per_kwh=clearing.lam_s.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP),
        supply_kwh=supply,
        demand_kwh=demand,
        wheeled_kwh=sum(split.wheeled_received.values(), ZERO),
        wheeling_shortfall_jpy=sum(wheeling.credit_jpy.values(), ZERO),
        platform_credit_jpy=sum(credits.values(), ZERO),
        market_terms_from="" if terms.effective_from is None else terms.effective_from.isoformat(),
    )


def market_terms_differ(site: SiteConfig, settlement: PeriodSettlement) -> str | None:
    """One line when ``settlement`` was made under other market terms than ``site`` has in
    force for its period (mechanism, or fee unless it was waived), else None."""
    terms = market_in_force(site, settlement.start_utc)
    fee_differs = "fee_waived" not in settlement.flags and settlement.fee_jpy_per_kwh != terms.platform_fee_jpy_per_kwh
    if settlement.mechanism == terms.mechanism and not fee_differs:
        return None
    stored = _terms_label(settlement.market_terms_from)
    in_force = _terms_label("" if terms.effective_from is None else terms.effective_from.isoformat())
    return (f"settled with {settlement.mechanism}, fee {settlement.fee_jpy_per_kwh} JPY/kWh ({stored}); "
            f"the config has {terms.mechanism}, fee {terms.platform_fee_jpy_per_kwh} JPY/kWh in force ({in_force})")


def _terms_label(effective_from: str | None) -> str:
    if effective_from is None:
        return "terms not recorded"
    return f"market terms from {effective_from}" if effective_from else "market terms from the beginning"


def _ratio(supply_kwh: Decimal, demand_kwh: Decimal) -> Decimal | None:
    """The SDR [-], quantized so it is stored as a plain decimal (never ``0E+6``)."""
    ratio = sdr_ratio(supply_kwh, demand_kwh)
    return None if ratio is None else ratio.quantize(RATIO_QUANTUM, rounding=ROUND_HALF_UP)


def _member_prices(site: SiteConfig, member_id: str, start_utc: dt.datetime, mtd_kwh: Decimal) -> _Prices:
    node = site.node(member_id)
    local_day = start_utc.astimezone(ZoneInfo(site.site.timezone)).date()
    imp = tariff_version(site, node.contract.tariff, local_day)
    assert isinstance(imp, ImportTariff)  # the config cross-checks guarantee the kind
    import_price = import_price_jpy_per_kwh(imp, start_utc, site.site.timezone, mtd_kwh)
    export_price, export_label = ZERO, ""
    if node.contract.buyback_tariff is not None:
        exp = tariff_version(site, node.contract.buyback_tariff, local_day)
        assert isinstance(exp, ExportTariff)
        export_price, export_label = export_price_jpy_per_kwh(exp), f"{exp.id}@{exp.version}"
    rules = StatementRules(
        kwh_decimals=imp.rounding.kwh_decimals, kwh_mode=imp.rounding.kwh_mode,
        yen_mode=imp.rounding.yen_mode, tax_mode=imp.rounding.tax_mode,
        consumption_tax_pct=imp.consumption_tax_pct,
    )
    fuel_flag = ""
    if fuel_adjustment_defaulted(imp, local_day):
        fuel_flag = f"fuel_adjustment_default:{imp.id}@{imp.version}:{local_day:%Y-%m}"
    return _Prices(import_price, export_price, f"{imp.id}@{imp.version}", export_label, rules, fuel_flag)


def _price_flags(prices: dict[str, _Prices]) -> list[str]:
    """Fuel adjustments that fell back to the flat value (one flag per tariff version and month).

    A member whose grid import crosses a monthly tier bound inside the period is priced at the
    tier the period started in, for the whole period, and not flagged: the utility bills tiers
    on the month's total kWh, so the monthly bill does not depend on it; the period's P2P price
    and grid-only bill both use this one marginal price, so the rationality promise holds; and
    a flag would depend on the month-to-date fold, so correcting an earlier period would change
    later periods that kept their price. See docs/settlement-rules.md.
    """
    return sorted({p.fuel_default_flag for p in prices.values() if p.fuel_default_flag})


def _fixed_point_flags(readings: PeriodReadings) -> list[str]:
    """``fixed_point_missing:<member>`` for each member whose fixed-point meter was read live at
    a boundary of the period, because its fixed 30-minute value did not arrive in time."""
    members = sorted({c.member_id for c in readings.channels if c.fell_back})
    return [f"{FIXED_POINT_MISSING_FLAG}:{m}" for m in members]


def _router_owners(site: SiteConfig) -> dict[str, str]:
    return {router.id: node.id for node, router in site.routers()}


def _metered_energy(
    site: SiteConfig, readings: PeriodReadings, flags: list[str]
) -> tuple[dict[str, _Energy], Decimal, list[LinkFlow] | None]:
    """Per-member grid and link energy, the metered link losses [kWh] and the link flows.

    The flows are None when a link carried energy both ways in the period (not traceable).
    """
    energy = {n.id: _Energy() for n in site.nodes}
    known = set(energy)
    for reading in readings.channels:
        if reading.member_id not in known:
            flags.append(f"unknown_member:{reading.member_id}")
    for node in site.nodes:
        grid = readings.channel(node.id, GRID_CHANNEL)
        deltas = grid.deltas_kwh() if grid is not None else None
        if deltas is None:
            if node.grid is not None:
                flags.append(f"missing:{node.id}:grid")
            continue
        energy[node.id].grid_import_kwh, energy[node.id].grid_export_kwh = deltas
    owners = _router_owners(site)
    losses = ZERO
    flows: list[LinkFlow] | None = []
    for link in site.links:
        a, b = owners[link.from_router], owners[link.to_router]
        loss, link_flows = _link_energy(link.id, link.efficiency_pct, a, b, readings, energy, flags)
        losses += loss
        if flows is not None and len(link_flows) > 1:
            flows = None
        elif flows is not None:
            flows.extend(link_flows)
    return energy, losses, flows


def _link_energy(
    link_id: str, efficiency_pct: float, a: str, b: str,
    readings: PeriodReadings, energy: dict[str, _Energy], flags: list[str],
) -> tuple[Decimal, list[LinkFlow]]:
    """Add one link's leg energy to both ends; returns its metered loss [kWh] and its flows."""
    ra, rb = readings.channel(a, link_channel(link_id)), readings.channel(b, link_channel(link_id))
    da = ra.deltas_kwh() if ra is not None else None
    db = rb.deltas_kwh() if rb is not None else None
    eff = Decimal(str(efficiency_pct)) / 100
    if da is None and db is None:
        flags.append(f"missing:{link_id}")
        return ZERO, []
    if da is None:
        assert db is not None
        flags.append(f"estimated:{a}:{link_id}")
        da = ((db[1] * eff).quantize(ENERGY_QUANTUM), (db[0] / eff).quantize(ENERGY_QUANTUM))
    if db is None:
        flags.append(f"estimated:{b}:{link_id}")
        db = ((da[1] * eff).quantize(ENERGY_QUANTUM), (da[0] / eff).quantize(ENERGY_QUANTUM))
    energy[a].link_in_kwh += da[0]
    energy[a].link_out_kwh += da[1]
    energy[b].link_in_kwh += db[0]
    energy[b].link_out_kwh += db[1]
    loss = da[1] + db[1] - da[0] - db[0]
    if loss < 0:
        flags.append(f"negative_loss:{link_id}")
    flows = [
        LinkFlow(src, dst, sent, got)
        for src, dst, sent, got in ((a, b, da[1], db[0]), (b, a, db[1], da[0]))
        if sent > 0 or got > 0
    ]
    return loss, flows


@dataclass(frozen=True)
class _Clearing:
    """The P2P price and fee charged per delivered kWh, the band ``(lambda_b', lambda_s')``
    [JPY/kWh], and whether sellers are topped up to their export value (no gains from trade)."""

    price: Decimal
    fee: Decimal
    lam_b: Decimal
    lam_s: Decimal
    top_up_sellers: bool


def _clearing_price(
    terms: MarketTerms, prices: dict[str, _Prices], split: Split, delivered: dict[str, Decimal],
    supply_kwh: Decimal, demand_kwh: Decimal, flags: list[str],
) -> _Clearing:
    """The P2P price per delivered own-surplus kWh, before the fee.

    A seller's export value per *delivered* kWh is ``lambda_s * sent / delivered`` (it carries
    the losses of the links its energy travelled). When ``lambda_s' > lambda_b'`` no price
    suits both sides (``no_gains_from_trade``): the fee is waived first (``fee_waived``); if
    that is not enough, buyers pay their lowest import price and the platform credits each
    seller up to its export value, so nobody is worse off than with the grid alone.
    """
    sold, bought, fee = split.own_sold, split.pool_bought, terms.platform_fee_jpy_per_kwh
    ask = {m: prices[m].export_jpy_per_kwh * sold[m] / delivered[m] for m in sold if delivered.get(m, ZERO) > 0}
    if not ask or not bought:
        lam_b = min(p.import_jpy_per_kwh for p in prices.values()) - fee
        lam_s = max(p.export_jpy_per_kwh for p in prices.values())
    else:
        lam_b = min(prices[m].import_jpy_per_kwh for m in bought) - fee
        lam_s = max(ask.values())
    top_up = False
    if ask and bought and lam_s > lam_b:
        flags.append("no_gains_from_trade")
        if fee > 0:
            flags.append("fee_waived")
            lam_b, fee = lam_b + fee, ZERO
        top_up = lam_s > lam_b
    # Rounding the price must not push it outside the individually rational band.
    low = lam_s.quantize(PRICE_QUANTUM, rounding=ROUND_CEILING)
    high = lam_b.quantize(PRICE_QUANTUM, rounding=ROUND_FLOOR)
    if top_up:
        price = high
    elif terms.mechanism == "uniform_auction":
        asks = [Order(m, delivered[m], limit) for m, limit in ask.items()]
        bids = [Order(m, q, prices[m].import_jpy_per_kwh - fee) for m, q in bought.items()]
        auction = terms.auction
        result = uniform_price_auction(asks, bids, auction.price_floor_jpy_per_kwh, auction.price_cap_jpy_per_kwh)
        if not result.all_in_the_money:
            flags.append("auction_orders_out_of_the_money")
        price = result.price_jpy_per_kwh.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    else:
        price = p2p_price(terms.mechanism, lam_b, lam_s, supply_kwh, demand_kwh)
        price = price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    if low <= high and ask and bought:  # the auction's floor and cap yield to the band
        price = max(low, min(high, price))
    return _Clearing(price, fee, lam_b, lam_s, top_up)


def _shares(
    flows: list[LinkFlow] | None, sold: dict[str, Decimal], bought: dict[str, Decimal], flags: list[str]
) -> dict[str, dict[str, Decimal]]:
    """Delivered kWh by buyer and origin seller: traced along the links, else pro-rata."""
    if not sold or not bought:
        return {}
    traced = trace(flows, sold, bought) if flows is not None else None
    if traced is not None:
        complete = all(sum(traced.get(b, {}).values(), ZERO) > 0 for b in bought)
        reached = all(any(row.get(s, ZERO) > 0 for row in traced.values()) for s in sold)
        if complete and reached:
            return {b: {s: kwh for s, kwh in traced[b].items() if s in sold} for b in bought}
    flags.append("counterparty_pro_rata")
    total = sum(sold.values(), ZERO)
    return {b: {s: bought[b] * q / total for s, q in sold.items()} for b in bought}


def _trades(
    price: Decimal, sold: dict[str, Decimal], bought: dict[str, Decimal], shares: dict[str, dict[str, Decimal]]
) -> dict[str, tuple[Trade, ...]]:
    """Per-member trades by counterparty from the delivered shares (largest-remainder rounding)."""
    if not shares:
        return {}
    sellers, buyers = sorted(sold), sorted(bought)
    by_member: dict[str, list[Trade]] = {m: [] for m in sellers + buyers}
    received = {s: [ZERO] * len(buyers) for s in sellers}
    sent = {s: allocate(sold[s], [shares[b].get(s, ZERO) for b in buyers], ENERGY_QUANTUM) for s in sellers}
    for j, buyer in enumerate(buyers):
        weights = [shares[buyer].get(s, ZERO) for s in sellers]
        money = allocate(q_money(price * bought[buyer]), weights, MONEY_QUANTUM)
        energy = allocate(bought[buyer], weights, ENERGY_QUANTUM)
        for i, seller in enumerate(sellers):
            if energy[i] or money[i]:
                by_member[buyer].append(Trade(seller, bought_kwh=energy[i], paid_jpy=money[i]))
            received[seller][j] = money[i]
    for seller in sellers:
        for j, buyer in enumerate(buyers):
            if sent[seller][j] or received[seller][j]:
                by_member[seller].append(Trade(buyer, sold_kwh=sent[seller][j], received_jpy=received[seller][j]))
    return {m: tuple(t) for m, t in by_member.items()}


def _with_wheeling(trades: dict[str, tuple[Trade, ...]], wheeling: Wheeling) -> dict[str, tuple[Trade, ...]]:
    """The P2P trades with each wheeling leg added to the trade with the same counterparty."""
    book = {m: {t.counterparty: t for t in ts} for m, ts in trades.items()}
    for leg in wheeling.legs:
        side_b = book.setdefault(leg.receiver, {})
        t = side_b.get(leg.relayer, Trade(leg.relayer))
        side_b[leg.relayer] = replace(t, wheeled_bought_kwh=leg.received_kwh, wheeling_paid_jpy=leg.paid_jpy)
        side_r = book.setdefault(leg.relayer, {})
        t = side_r.get(leg.receiver, Trade(leg.receiver))
        side_r[leg.receiver] = replace(t, wheeled_sold_kwh=leg.sent_kwh, wheeling_received_jpy=leg.paid_jpy)
    return {m: tuple(row[c] for c in sorted(row)) for m, row in book.items()}


def _seller_credits(
    prices: dict[str, _Prices], split: Split, trades: dict[str, tuple[Trade, ...]], top_up: bool
) -> dict[str, Decimal]:
    """Platform credits that bring sellers up to their export value (no gains from trade) [JPY]."""
    if not top_up:
        return {}
    credits = {}
    for m, kwh in split.own_sold.items():
        received = sum((t.received_jpy for t in trades.get(m, ())), ZERO)
        short = q_money(prices[m].export_jpy_per_kwh * kwh) - received
        if short > 0:
            credits[m] = short
    return credits


def _member_line(
    member_id: str, prices: _Prices, energy: _Energy, split: Split, trades: tuple[Trade, ...],
    fee: Decimal, credit: Decimal,
) -> MemberLine:
    bought, sold = split.pool_bought.get(member_id, ZERO), split.own_sold.get(member_id, ZERO)
    wheeled_in = split.wheeled_received.get(member_id, ZERO)
    wheeled_out = split.wheeled_sent.get(member_id, ZERO)
    paid = sum((t.paid_jpy for t in trades), ZERO)
    received = sum((t.received_jpy for t in trades), ZERO)
    wheeling_paid = sum((t.wheeling_paid_jpy for t in trades), ZERO)
    wheeling_received = sum((t.wheeling_received_jpy for t in trades), ZERO)
    fee_jpy = q_money(fee * bought) if bought > 0 and any(t.bought_kwh for t in trades) else ZERO
    lam_b, lam_s = prices.import_jpy_per_kwh, prices.export_jpy_per_kwh
    grid_import_jpy = q_money(lam_b * energy.grid_import_kwh)
    grid_export_jpy = q_money(lam_s * energy.grid_export_kwh)
    # The grid-only bill of the member's own net metered energy (wheeling.py: I - wheeled >= 0).
    grid_only = q_money(lam_b * (energy.grid_import_kwh + bought + wheeled_in - wheeled_out)) - q_money(
        lam_s * (energy.grid_export_kwh + sold)
    )
    role = "buyer" if energy.bought_kwh > 0 else "seller" if energy.sold_kwh > 0 else "none"
    return MemberLine(
        member_id=member_id, role=role,
        import_price_jpy_per_kwh=lam_b, export_price_jpy_per_kwh=lam_s,
        import_tariff=prices.import_tariff, export_tariff=prices.export_tariff,
        grid_import_kwh=energy.grid_import_kwh, grid_export_kwh=energy.grid_export_kwh,
        grid_import_jpy=grid_import_jpy, grid_export_jpy=grid_export_jpy,
        p2p_bought_kwh=bought, p2p_sold_kwh=sold,
        p2p_paid_jpy=paid, p2p_received_jpy=received, fee_jpy=fee_jpy,
        trades=trades,
        bill_jpy=(grid_import_jpy - grid_export_jpy + paid + fee_jpy - received
                  + wheeling_paid - wheeling_received - credit),
        grid_only_jpy=grid_only,
        rules=prices.rules,
        wheeled_sent_kwh=wheeled_out, wheeled_received_kwh=wheeled_in,
        wheeling_paid_jpy=wheeling_paid, wheeling_received_jpy=wheeling_received,
        platform_credit_jpy=credit,
    )
