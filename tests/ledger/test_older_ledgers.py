"""A ledger recorded by an earlier gridctl (no price band, supply, demand or market terms in its
period entries) still verifies against its site file: re-settling compares what it recorded."""

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from gridctl.cli import app
from tests.ledger.tamper import rebuild_chain

SITE = str(Path(__file__).resolve().parents[2] / "configs" / "misono.yaml")
LATER = ("buy_limit_jpy_per_kwh", "sell_limit_jpy_per_kwh", "supply_kwh", "demand_kwh", "market_terms_from",
         "wheeled_kwh", "wheeling_shortfall_jpy", "platform_credit_jpy")


def gridctl(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _as_an_older_gridctl_wrote_it(path: Path) -> None:
    """Drop the later period fields from every period entry, rewriting the chain."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER entries_append_only_u")
    for seq, body in db.execute("SELECT seq, body FROM entries WHERE kind = 'period'").fetchall():
        data = {k: v for k, v in json.loads(body).items() if k not in LATER}
        db.execute("UPDATE entries SET body = ? WHERE seq = ?",
                   (json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False), seq))
    rebuild_chain(db)
    db.commit()
    db.close()


def test_an_older_ledger_verifies_with_its_site_file(tmp_path):
    readings, ledger = tmp_path / "aug.csv", tmp_path / "ledger.sqlite"
    assert gridctl("settle", "sample-readings", "-c", SITE, "--month", "2026-08", "--out", readings)[0] == 0
    code, _, err = gridctl("settle", "run", "-c", SITE, "--ledger", ledger, "--readings", readings,
                           "--from", "2026-08-01T00:00", "--to", "2026-08-01T04:00")
    assert code == 0, err
    _as_an_older_gridctl_wrote_it(ledger)
    code, out, err = gridctl("settle", "verify", "--ledger", ledger, "--config", SITE)
    assert code == 0, err
    assert "8 periods" in out
