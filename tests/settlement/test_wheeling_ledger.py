"""Wheeling through a real SQLite ledger: stored, read back, verified, and re-checked by verify."""

import json
import sqlite3
from decimal import Decimal as D

from gridctl.ledger import Ledger, verify_ledger
from gridctl.ledger.book import SettlementBook
from gridctl.settlement import settle_period
from gridctl.settlement.codec import member_from_dict, member_to_dict
from tests.ledger.tamper import rebuild_chain
from tests.settlement.test_settle_hand import _site, mall_relays, one_link, with_mechanism


def test_wheeling_round_trips_and_verifies(tmp_path):
    site = with_mechanism(_site(), "mmr")
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        settlement, _ = SettlementBook(site, store).settle(mall_relays("1.0", "3.0"))
        assert store.settlements() == [(settlement, 1)]
        assert settlement.member("mall").wheeled_sent_kwh == D("1.0")
        report = verify_ledger(store, site)
    assert report.ok, report.problem


def test_verify_catches_wheeling_passed_off_as_a_sale(tmp_path):
    """A rebuilt chain that books the mall's relayed kWh as a P2P sale fails the own-surplus check."""
    site = with_mechanism(_site(), "mmr")
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, "misono") as store:
        SettlementBook(site, store).settle(mall_relays("5.0", "3.0"))
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    seq, body = db.execute("SELECT seq, body FROM entries WHERE kind = 'member' AND member_id = 'mall'").fetchone()
    data = json.loads(body)
    data["p2p_sold_kwh"], data["wheeled_sent_kwh"] = data["wheeled_sent_kwh"], "0"
    for trade in data["trades"]:
        trade["sold_kwh"], trade["wheeled_sold_kwh"] = trade["wheeled_sold_kwh"], "0"
    db.execute("UPDATE entries SET body = ? WHERE seq = ?", (json.dumps(data, sort_keys=True, separators=(",", ":")), seq))
    rebuild_chain(db)
    db.commit()
    db.close()
    with Ledger(path) as store:
        report = verify_ledger(store)
    assert not report.ok
    assert "own surplus: mall sold 3.0 kWh P2P > its own net surplus 0 kWh" in report.problem


def test_member_lines_of_older_ledgers_read_wheeling_as_zero():
    home = settle_period(with_mechanism(_site(), "mmr"), mall_relays("5.0", "3.0")).member("home-2")
    old = {k: v for k, v in member_to_dict(home).items()
           if k not in ("wheeled_sent_kwh", "wheeled_received_kwh", "wheeling_paid_jpy",
                        "wheeling_received_jpy", "platform_credit_jpy")}
    back = member_from_dict(old)
    assert back == home and back.platform_credit_jpy == D(0)


def test_a_period_bought_over_links_with_no_seller_settles(tmp_path):
    """Energy received over a link that no member sent (a leg counter ahead of its far end, as
    the scripted plant of the daemon benchmark has) once raised KeyError in the wheeling split:
    the daemon then kept that period, and every later one, pending for good."""
    site = with_mechanism(_site(), "mmr")
    with Ledger(tmp_path / "ledger.sqlite", "misono") as store:
        settlement, _ = SettlementBook(site, store).settle(one_link("0", "1.0"))
        h2 = settlement.member("home-2")
        assert h2.p2p_bought_kwh + h2.wheeled_received_kwh == D("1.0")
        assert h2.p2p_bought_kwh == D("1.0")
        assert settlement.member("home-1").p2p_sold_kwh == D(0)
        assert "negative_loss:link-home-1-home-2" in settlement.flags
        assert verify_ledger(store, site).ok
