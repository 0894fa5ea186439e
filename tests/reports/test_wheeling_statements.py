"""Statements of a month with relayed grid energy (wheeling) and platform credits add up to the yen."""

import datetime as dt
from decimal import Decimal as D

from gridctl.ledger import Ledger
from gridctl.ledger.book import SettlementBook
from gridctl.reports import build_documents, invoice_context
from gridctl.settlement import PeriodReadings
from tests.settlement.test_settle_hand import LMH1, NOON, _site, all_channels_idle, with_mechanism

ISSUED = dt.date(2026, 9, 3)


def _relaying_periods(count: int):
    """The mall imports and relays a changing, fractional part of it to home-1, period after period."""
    for i in range(count):
        sent = D("0.731") + D(i) * D("0.113")
        deltas = all_channels_idle() | {
            ("mall", "grid"): (sent + D("1.377"), D(0)),
            ("mall", LMH1): (D(0), sent),
            ("home-1", LMH1): (sent * D("0.98"), D(0)),
        }
        yield PeriodReadings.from_deltas(NOON + dt.timedelta(minutes=30 * i), deltas, base_kwh=D(100) + i)


def test_relayed_energy_and_credits_are_lines_that_add_up(tmp_path):
    site = with_mechanism(_site(), "mmr")
    with Ledger(tmp_path / "ledger.sqlite", "misono") as ledger:
        book = SettlementBook(site, ledger)
        for readings in _relaying_periods(9):
            settlement, _ = book.settle(readings)
            assert settlement.checks.ok, settlement.checks.failures
        docs = build_documents(ledger, "2026-08", None, invoice_context(site, ISSUED))
    summary = next(d for d in docs if d.kind == "summary")
    mall = next(d for d in docs if d.member_id == "mall")
    home = next(d for d in docs if d.member_id == "home-1")
    # the relayer is credited what it received and what the platform covered; the receiver pays
    assert mall.value("wheeling_received_jpy") < 0 and mall.value("platform_credit_jpy") < 0
    assert home.value("wheeling_paid_jpy") > 0
    for doc in (mall, home):
        charges = [line.value for line in doc.section("charges")]
        assert sum(charges) == doc.value("total_payable_jpy"), doc.member_id
        assert doc.value("savings_jpy") == doc.value("grid_only_jpy") - doc.value("bill_jpy")
        assert doc.value("savings_jpy") >= 0  # nobody worse off than grid-only
    # block: printed member totals = printed fees - printed credits + residue, to the yen
    members = [line.value for line in summary.section("members")]
    assert sum(members) == summary.value("members_total_jpy")
    assert summary.value("members_total_jpy") == (
        summary.value("printed_fee_jpy") + summary.value("printed_credit_jpy") + summary.value("rounding_residue_jpy"))
    assert summary.value("wheeling_paid_jpy") == summary.value("wheeling_received_jpy") > 0
    assert summary.value("wheeled_kwh") > 0
    assert "credits" in summary.value("members_check")
