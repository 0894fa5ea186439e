"""Hand-computed prices of the three mechanisms (numbers worked out on paper in the comments)."""

from decimal import Decimal as D

from gridctl.settlement.mechanisms import Order, mmr_prices, p2p_price, sdr_prices, uniform_price_auction


def test_sdr_below_one():
    # lb=30, ls=10, G=5, D=10: SDR=0.5; P_sell = 300 / (20*0.5 + 10) = 15; P_buy = 7.5 + 15 = 22.5
    assert sdr_prices(D(30), D(10), D(5), D(10)) == (D(15), D("22.5"))


def test_sdr_budget_balance_identity():
    # P_buy*D = P_sell*G + lb*(D - G): 22.5*10 = 15*5 + 30*5 = 225
    p_sell, p_buy = sdr_prices(D(30), D(10), D(5), D(10))
    assert p_buy * 10 == p_sell * 5 + 30 * 5


def test_sdr_above_one_and_no_demand():
    assert sdr_prices(D(30), D(10), D(12), D(10)) == (D(10), D(10))
    assert sdr_prices(D(30), D(10), D(12), D(0)) == (D(10), D(10))


def test_sdr_zero_supply_is_retail():
    # SDR=0: P_sell = 300/10 = 30 = lb, P_buy = lb
    assert sdr_prices(D(30), D(10), D(0), D(10)) == (D(30), D(30))


def test_mmr_three_cases():
    # P_mmr = 20
    assert mmr_prices(D(30), D(10), D(10), D(10)) == (D(20), D(20))
    # G=15 > D=10: P_sell = (10*20 + 5*10)/15 = 250/15
    p_sell, p_buy = mmr_prices(D(30), D(10), D(15), D(10))
    assert (p_sell, p_buy) == (D(250) / D(15), D(20))
    # G=5 < D=10: P_buy = (5*20 + 5*30)/10 = 25
    assert mmr_prices(D(30), D(10), D(5), D(10)) == (D(20), D(25))


def test_p2p_part_of_the_prices():
    assert p2p_price("sdr", D(30), D(10), D(5), D(10)) == D(15)
    assert p2p_price("mmr", D(30), D(10), D(5), D(10)) == D(20)


def test_uniform_auction_hand_case():
    # asks A 2@10, B 3@12; bids C 4@30, E 2@11.
    # A-C 2 kWh (10|30), B-C 2 kWh (12|30), then B 12 > E 11 stops: price (12+30)/2 = 21
    clearing = uniform_price_auction(
        [Order("a", D(2), D(10)), Order("b", D(3), D(12))],
        [Order("c", D(4), D(30)), Order("e", D(2), D(11))],
        floor=D(0), cap=D(50),
    )
    assert clearing.price_jpy_per_kwh == D(21)
    assert clearing.matched_kwh == D(4)
    assert not clearing.all_in_the_money


def test_uniform_auction_all_matched_and_clamped():
    # one seller 2@15, one buyer 2@31.58: price (15 + 31.58)/2 = 23.29; cap 20 clamps it
    asks, bids = [Order("s", D(2), D(15))], [Order("b", D(2), D("31.58"))]
    assert uniform_price_auction(asks, bids, D(0), D(50)).price_jpy_per_kwh == D("23.29")
    clearing = uniform_price_auction(asks, bids, D(0), D(20))
    assert clearing.price_jpy_per_kwh == D(20) and clearing.all_in_the_money
