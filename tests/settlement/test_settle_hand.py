"""Hand-computed settlements of Misono periods.

Prices on Monday 2026-08-03 12:00 JST (03:00 UTC): homes on TEPCO Juryo-B tier 1:
29.80 + 3.98 surcharge - 1.70 August fuel adjustment = 32.08 JPY/kWh; FIT 15.00, post-FIT 8.50;
platform fee 0.50 JPY/kWh, so lambda_b' = 32.08 - 0.50 = 31.58.
"""

import datetime as dt
import functools
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.settlement import PeriodReadings, link_channel, settle_period

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
NOON = dt.datetime(2026, 8, 3, 3, 0, tzinfo=dt.timezone.utc)
L12 = link_channel("link-home-1-home-2")
L23 = link_channel("link-home-2-home-3")


@pytest.fixture(scope="module")
def misono():
    return _site()


def with_mechanism(site, mechanism):
    return site.model_copy(update={"market": site.market.model_copy(update={"mechanism": mechanism})})


@functools.lru_cache(maxsize=1)
def _site():
    return load_site(SITE_FILE)


def all_channels_idle():
    """Zero deltas on every channel of the site, so nothing is flagged missing."""
    site = _site()
    owners = {router.id: node.id for node, router in site.routers()}
    deltas = {(n.id, "grid"): (D(0), D(0)) for n in site.nodes}
    for link in site.links:
        for router in (link.from_router, link.to_router):
            deltas[(owners[router], link_channel(link.id))] = (D(0), D(0))
    return deltas


def one_link(sent: str, received: str, extra=None):
    deltas = all_channels_idle()
    deltas |= {
        ("home-1", "grid"): (D(0), D("0.5")),
        ("home-2", "grid"): (D("1.0"), D(0)),
        ("home-1", L12): (D(0), D(sent)),
        ("home-2", L12): (D(received), D(0)),
    }
    deltas.update(extra or {})
    return PeriodReadings.from_deltas(NOON, deltas, base_kwh=D(100))


def test_mmr_without_losses(misono):
    # P = (31.58 + 15)/2 = 23.29; home-2 pays 23.29*2 = 46.58 + fee 1.00; home-1 receives 46.58
    s = settle_period(with_mechanism(misono, "mmr"), one_link("2.000", "2.000"))
    h1, h2 = s.member("home-1"), s.member("home-2")
    assert s.price_jpy_per_kwh == D("23.29")
    assert (h2.p2p_paid_jpy, h2.fee_jpy, h1.p2p_received_jpy) == (D("46.58"), D("1.00"), D("46.58"))
    # home-2: 1.0*32.08 + 46.58 + 1.00 = 79.66 vs grid-only 3.0*32.08 = 96.24
    assert (h2.bill_jpy, h2.grid_only_jpy) == (D("79.66"), D("96.24"))
    # home-1: -0.5*15 - 46.58 = -54.08 vs grid-only -2.5*15 = -37.50: both save 16.58
    assert (h1.bill_jpy, h1.grid_only_jpy) == (D("-54.08"), D("-37.50"))
    assert h1.savings_jpy == h2.savings_jpy == D("16.58")
    assert s.checks.ok and s.flags == ()


def test_sdr_without_losses(misono):
    # net positions: home-1 +2.5, home-2 -3.0: SDR = 5/6;
    # P_sell = 31.58*15 / (16.58*5/6 + 15) = 2842.2/172.9 = 16.43840... -> 16.4384
    s = settle_period(with_mechanism(misono, "sdr"), one_link("2.000", "2.000"))
    assert s.supply_demand_ratio == D("0.833333")  # 2.5/3.0, stored to 1e-6
    assert s.price_jpy_per_kwh == D("16.4384")
    assert s.member("home-2").p2p_paid_jpy == D("32.8768")
    assert s.member("home-1").p2p_received_jpy == D("32.8768")
    assert s.checks.ok


def test_auction_with_link_losses(misono):
    # sent 2.000, received 1.940: losses 0.060. Ask per delivered kWh = 15*2/1.94 = 15.46391...,
    # bid 31.58: price = (15.4639175 + 31.58)/2 = 23.52195... -> 23.5220;
    # home-2 pays 23.5220*1.94 = 45.63268 -> 45.6327, fee 0.5*1.94 = 0.97; home-1 receives 45.6327
    s = settle_period(with_mechanism(misono, "uniform_auction"), one_link("2.000", "1.940"))
    assert (s.sold_kwh, s.bought_kwh, s.losses_kwh) == (D("2.000"), D("1.940"), D("0.060"))
    assert s.price_jpy_per_kwh == D("23.5220")
    h1, h2 = s.member("home-1"), s.member("home-2")
    assert (h2.p2p_paid_jpy, h2.fee_jpy, h1.p2p_received_jpy) == (D("45.6327"), D("0.97"), D("45.6327"))
    # seller price per sent kWh: 23.522*1.94/2 = 22.81634
    assert s.seller_price_jpy_per_kwh == D("22.8163")
    assert s.checks.ok


def test_transit_router_is_neither_buyer_nor_seller(misono):
    # home-1 -> home-2 -> home-3; home-2 passes 2.0 kWh through, home-3 receives 1.9
    readings = one_link("2.000", "2.000", {
        ("home-2", L23): (D(0), D("2.000")),
        ("home-3", L23): (D("1.900"), D(0)),
    })
    s = settle_period(misono, readings)
    assert s.member("home-2").role == "none"
    assert s.member("home-3").p2p_bought_kwh == D("1.900")
    assert [t.counterparty for t in s.member("home-3").trades] == ["home-1"]
    assert s.losses_kwh == D("0.100") and s.checks.energy_balance_ok


def test_two_sellers_split_pro_rata(misono):
    # home-1 sends 2 and home-3 sends 1 into home-2 (no losses): home-2 pays 3 kWh, split 2:1
    readings = one_link("2.000", "2.000", {
        ("home-2", L23): (D("1.000"), D(0)),
        ("home-3", L23): (D(0), D("1.000")),
    })
    s = settle_period(with_mechanism(misono, "mmr"), readings)
    paid = {t.counterparty: t.paid_jpy for t in s.member("home-2").trades}
    assert paid == {"home-1": D("46.58"), "home-3": D("23.29")}
    assert s.member("home-3").p2p_received_jpy == D("23.29")


def test_missing_leg_is_estimated_from_the_other_end(misono):
    readings = PeriodReadings.from_deltas(NOON, {("home-1", L12): (D(0), D("2.000"))}, D(100))
    s = settle_period(misono, readings)
    # home-2's leg is estimated: 2.000 * 0.97 = 1.940 received
    assert s.member("home-2").p2p_bought_kwh == D("1.940000")
    assert "estimated:home-2:link-home-1-home-2" in s.flags
    assert "missing:home-3:grid" in s.flags
    assert s.checks.ok


def test_counter_going_backwards_is_missing(misono):
    readings = PeriodReadings.from_deltas(NOON, {("home-1", "grid"): (D("-1"), D(0))}, D(100))
    s = settle_period(misono, readings)
    assert "missing:home-1:grid" in s.flags
    assert s.member("home-1").grid_import_kwh == 0


def test_time_of_use_price_for_the_store(misono):
    # weekday 12:00 JST: 34.20 + 3.98 - 1.50 = 36.68 JPY/kWh for the store
    readings = PeriodReadings.from_deltas(NOON, {("store", "grid"): (D("10"), D(0))}, D(100))
    line = settle_period(misono, readings).member("store")
    assert line.import_price_jpy_per_kwh == D("36.68")
    assert line.grid_import_jpy == D("366.80")


def test_tier_follows_month_to_date(misono):
    readings = PeriodReadings.from_deltas(NOON, {("home-1", "grid"): (D("1"), D(0))}, D(100))
    # 150 kWh this month already: tier 2 36.40 + 3.98 - 1.70 = 38.68
    line = settle_period(misono, readings, {"home-1": D(150)}).member("home-1")
    assert line.import_price_jpy_per_kwh == D("38.68")


L34 = link_channel("link-home-3-home-4")


def test_counterparties_traced_along_the_links(misono):
    # home-1 -> home-2: 3.0; home-2 keeps 1.0 and forwards 2.0 -> home-3; home-4 -> home-3: 1.0.
    # Traced: home-2 got 1.0 from home-1; home-3 got 2.0 from home-1 and 1.0 from home-4.
    # (Pro-rata over the pool would have given home-2 0.75 from home-1 and 0.25 from home-4.)
    readings = one_link("3.000", "3.000", {
        ("home-2", L23): (D(0), D("2.000")),
        ("home-3", L23): (D("2.000"), D(0)),
        ("home-3", L34): (D("1.000"), D(0)),
        ("home-4", L34): (D(0), D("1.000")),
    })
    s = settle_period(with_mechanism(misono, "mmr"), readings)
    assert "counterparty_pro_rata" not in s.flags
    home2 = {t.counterparty: t.bought_kwh for t in s.member("home-2").trades}
    home3 = {t.counterparty: t.bought_kwh for t in s.member("home-3").trades}
    assert home2 == {"home-1": D("1.000")}
    assert home3 == {"home-1": D("2.000"), "home-4": D("1.000")}
    sold4 = {t.counterparty: t.sold_kwh for t in s.member("home-4").trades}
    assert sold4 == {"home-3": D("1.000")}
    # MMR with lambda_s' = max(15 FIT home-1, 8.5 post-FIT home-4) = 15: (31.58 + 15)/2 = 23.29
    assert s.member("home-4").p2p_received_jpy == D("23.29")
    assert s.checks.ok


def test_link_used_both_ways_falls_back_to_pro_rata(misono):
    readings = one_link("2.000", "2.000", {("home-1", L12): (D("0.500"), D("2.000")),
                                           ("home-2", L12): (D("2.000"), D("0.500"))})
    s = settle_period(misono, readings)
    assert "counterparty_pro_rata" in s.flags and s.checks.ok


LMH1 = link_channel("link-mall-home-1")


def mall_relays(mall_import: str, sent: str):
    """The mall imports from the grid and sends on its link to home-1 (which uses it all)."""
    deltas = all_channels_idle() | {
        ("mall", "grid"): (D(mall_import), D(0)),
        ("mall", LMH1): (D(0), D(sent)),
        ("home-1", LMH1): (D(sent), D(0)),
    }
    return PeriodReadings.from_deltas(NOON, deltas, base_kwh=D(100))


def test_mall_relaying_grid_power_is_wheeling_not_a_sale(misono):
    # Mall (business TOU, weekday noon: 34.20 + 3.98 - 1.50 = 36.68; post-FIT 8.50) imports 5.0
    # and sends 3.0 to home-1 (32.08). Own net surplus -5 + 3 = -2 < 0: all 3.0 kWh are wheeling.
    # Settled as a P2P sale (the old rule) the mall paid 183.40 - 3*20.04 = 123.28 against a
    # "grid-only" of 183.40 - 3*8.50 = 157.90, while its own net energy (2 kWh) costs 73.36.
    s = settle_period(with_mechanism(misono, "mmr"), mall_relays("5.0", "3.0"))
    mall, h1 = s.member("mall"), s.member("home-1")
    assert (mall.p2p_sold_kwh, mall.wheeled_sent_kwh) == (D(0), D("3.0"))
    assert (h1.p2p_bought_kwh, h1.wheeled_received_kwh) == (D(0), D("3.0"))
    assert mall.grid_only_jpy == D("73.36")  # 36.68 * (5 - 3)
    # home-1 pays the mall's price capped at its own: min(36.68, 32.08) * 3 = 96.24, no fee;
    # the platform credits the mall the rest: 36.68*3 - 96.24 = 13.80, so it is exactly whole
    assert (h1.wheeling_paid_jpy, h1.fee_jpy, mall.wheeling_received_jpy) == (D("96.24"), D(0), D("96.24"))
    assert mall.platform_credit_jpy == s.wheeling_shortfall_jpy == D("13.80")
    assert mall.bill_jpy == D("73.36")  # 183.40 - 96.24 - 13.80
    assert (h1.bill_jpy, h1.grid_only_jpy) == (D("96.24"), D("96.24"))
    assert "wheeling_shortfall:mall" in s.flags
    assert s.wheeled_kwh == D("3.0") and s.checks.ok


def test_relayed_and_own_surplus_are_split_in_proportion(misono):
    # Mall imports 1.0 and sends 3.0: own surplus -1 + 3 = 2 is sold P2P, 1.0 is wheeling.
    # home-1 receives 3.0: 2.0 P2P at MMR (31.58 + 8.50)/2 = 20.04 -> 40.08 + fee 1.00, and
    # 1.0 wheeled at min(36.68, 32.08) = 32.08. The mall: 36.68 - 40.08 - 32.08 - credit 4.60
    # = -40.08 against grid-only 36.68*(1 - 1) - 8.50*2 = -17.00.
    s = settle_period(with_mechanism(misono, "mmr"), mall_relays("1.0", "3.0"))
    mall, h1 = s.member("mall"), s.member("home-1")
    assert (mall.p2p_sold_kwh, mall.wheeled_sent_kwh) == (D("2.0"), D("1.0"))
    assert (h1.p2p_bought_kwh, h1.wheeled_received_kwh) == (D("2.000000"), D("1.000000"))
    assert s.price_jpy_per_kwh == D("20.04")
    assert (h1.p2p_paid_jpy, h1.fee_jpy, h1.wheeling_paid_jpy) == (D("40.08"), D("1.00"), D("32.08"))
    assert (mall.bill_jpy, mall.grid_only_jpy) == (D("-40.08"), D("-17.00"))
    assert (h1.bill_jpy, h1.grid_only_jpy) == (D("73.16"), D("96.24"))
    assert s.checks.ok


def test_fee_above_the_gains_is_waived(misono):
    # fee 20: lambda_b' = 32.08 - 20 = 12.08 < lambda_s' = 15, no price suits both with the fee;
    # waived: MMR over [15, 32.08] = 23.54 and no fee, so both still gain
    market = misono.market.model_copy(update={"mechanism": "mmr", "platform_fee_jpy_per_kwh": D(20)})
    s = settle_period(misono.model_copy(update={"market": market}), one_link("2.000", "2.000"))
    assert {"no_gains_from_trade", "fee_waived"} <= set(s.flags)
    assert (s.price_jpy_per_kwh, s.fee_jpy_per_kwh, s.member("home-2").fee_jpy) == (D("23.54"), D(0), D(0))
    assert s.checks.ok and all(m.savings_jpy >= 0 for m in s.members)


def test_energy_received_that_no_seller_sent_is_settled_without_a_trade(misono):
    # home-1's leg meters 1.0 kWh in while the mall's leg sent nothing (a meter fault): no seller,
    # so no trade and no payment; flagged negative loss; home-1 is no worse off than grid-only.
    deltas = all_channels_idle() | {("home-1", LMH1): (D("1.0"), D(0))}
    s = settle_period(misono, PeriodReadings.from_deltas(NOON, deltas, base_kwh=D(100)))
    h1 = s.member("home-1")
    assert "negative_loss:link-mall-home-1" in s.flags
    assert (h1.p2p_bought_kwh, h1.p2p_paid_jpy, h1.trades) == (D("1.0"), D(0), ())
    assert h1.bill_jpy <= h1.grid_only_jpy and s.checks.ok
