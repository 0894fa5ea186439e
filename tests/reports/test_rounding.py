"""The statement's one rounding rule, on the examples of issue 11 (defect 2).

A real settled period of the reference site is taken and its member's money set to the
example's amounts, so each case runs through the same statement code as a month of the ledger.
"""

import dataclasses
import functools
from decimal import Decimal as D
from pathlib import Path

import pytest

from gridctl.config import load_site
from gridctl.reports.statement import member_statement
from gridctl.reports import block_summary
from gridctl.settlement import settle_period
from gridctl.settlement.readings_csv import format_readings, parse_readings, periods_from_counters
from gridctl.settlement.sample import sample_month

SITE_FILE = Path(__file__).resolve().parents[2] / "configs" / "misono.yaml"
HEAD = "0" * 64


@functools.lru_cache(maxsize=1)
def _period():
    site = load_site(SITE_FILE)
    readings = periods_from_counters(parse_readings(format_readings(sample_month(site, 2026, 8))))
    return settle_period(site, readings[30])


def _with_money(member: str, **amounts: D):
    """The period with ``member``'s money set to ``amounts`` (and its trades dropped)."""
    period = _period()
    members = tuple(
        dataclasses.replace(m, trades=(), **amounts) if m.member_id == member else m for m in period.members
    )
    return dataclasses.replace(period, members=members)


def _printed_lines_add_up(doc) -> tuple[D, D]:
    """(sum of the printed charge lines incl. any rounding line, printed total)."""
    keys = {line.key: line.value for line in doc.lines}
    lines = [keys["p2p_paid_jpy"], keys["fee_jpy"], -abs(keys["p2p_received_jpy"]), keys.get("rounding_jpy", D(0))]
    return sum(lines, D(0)), keys["total_payable_jpy"]


def test_purchases_1_fee_0_sales_3380_add_up_to_the_printed_total():
    # exact -3,379.5: each line cut once (1, 0, 3,380), the total is their sum to the yen
    period = _with_money("home-1", p2p_paid_jpy=D("1.2"), fee_jpy=D("0.2"), p2p_received_jpy=D("3380.9"))
    doc = member_statement("home-1", "2026-08", [period], HEAD)
    lines, total = _printed_lines_add_up(doc)
    assert lines == total == D(-3379)


def test_a_rounding_line_shows_where_the_lines_do_not_add_up():
    # exact 2.2 prints 2; the lines 1 + 0 would print 1: the rounding adjustment says +1
    period = _with_money("home-1", p2p_paid_jpy=D("1.6"), fee_jpy=D("0.6"), p2p_received_jpy=D(0))
    doc = member_statement("home-1", "2026-08", [period], HEAD)
    lines, total = _printed_lines_add_up(doc)
    assert lines == total == D(2)
    assert doc.value("rounding_jpy") == D(1)


def test_a_payout_is_not_rounded_in_the_payers_disfavour():
    # the member is paid 3,380.6 JPY: it is printed 3,380 (fractions cut), never 3,381
    period = _with_money("home-1", p2p_paid_jpy=D(0), fee_jpy=D(0), p2p_received_jpy=D("3380.6"))
    doc = member_statement("home-1", "2026-08", [period], HEAD)
    assert doc.value("total_payable_jpy") == D(-3380)
    assert abs(doc.value("p2p_received_jpy")) == D(3380)


def test_printed_savings_are_printed_grid_only_minus_printed_bill():
    period = _with_money("home-1", grid_only_jpy=D("100.2"), bill_jpy=D("50.6"))
    doc = member_statement("home-1", "2026-08", [period], HEAD)
    assert doc.value("grid_only_jpy") == D(100) and doc.value("bill_jpy") == D(50)
    assert doc.value("savings_jpy") == D(50)


@pytest.mark.parametrize("member", ["home-1", "mall"])
def test_consumption_tax_of_a_payout_is_cut_on_its_magnitude(member):
    period = _with_money(member, p2p_paid_jpy=D(0), fee_jpy=D(0), p2p_received_jpy=D("1099.9"))
    doc = member_statement(member, "2026-08", [period], HEAD)
    # -1,099 contains 99.909... JPY of 10 % tax: -99, the same magnitude as a charge of 1,099
    assert doc.value("total_payable_jpy") == D(-1099)
    assert doc.value("consumption_tax_jpy") == D(-99)


def test_member_totals_reconcile_to_the_fees_with_the_residue_shown():
    period = _with_money("home-1", p2p_paid_jpy=D("1.6"), fee_jpy=D("0.6"), p2p_received_jpy=D(0))
    period = dataclasses.replace(period, members=tuple(
        dataclasses.replace(m, p2p_paid_jpy=D(0), fee_jpy=D("0.7"), p2p_received_jpy=D("1.6"), trades=())
        if m.member_id == "home-2" else m for m in period.members))
    summary = block_summary("2026-08", [period], HEAD)
    statements = [member_statement(m.member_id, "2026-08", [period], HEAD) for m in period.members]
    members_sum = sum((d.value("total_payable_jpy") for d in statements), D(0))
    assert summary.value("members_total_jpy") == members_sum
    fees = sum((m.fee_jpy for m in period.members), D(0))
    assert summary.value("printed_fee_jpy") == fees.quantize(D(1), rounding="ROUND_DOWN")
    assert members_sum == summary.value("printed_fee_jpy") + summary.value("rounding_residue_jpy")
