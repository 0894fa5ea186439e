"""Small settlement defects: a defaulted fuel adjustment month, the stored SDR, and the
documented pricing of a tier crossed inside a period."""

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.ledger import Ledger, verify_ledger
from gridctl.ledger.book import SettlementBook
from gridctl.settlement import PeriodReadings, settle_period
from gridctl.settlement.codec import period_to_dict
from tests.settlement.test_settle_hand import NOON, _site, all_channels_idle

ROOT = Path(__file__).resolve().parents[2]


def home1_imports(start_utc, kwh="1.0"):
    deltas = all_channels_idle() | {("home-1", "grid"): (D(kwh), D(0))}
    return PeriodReadings.from_deltas(start_utc, deltas, base_kwh=D(100))


def test_a_month_missing_from_the_fuel_table_is_flagged():
    july = NOON - dt.timedelta(days=31)  # Friday 2026-07-03 12:00 JST: the table has 08 and 09 only
    s = settle_period(_site(), home1_imports(july))
    assert "fuel_adjustment_default:tepco-juryo-b@2025-04:2026-07" in s.flags
    assert s.member("home-1").import_price_jpy_per_kwh == D("32.28")  # 29.80 + 3.98 - 1.50 (flat)
    august = settle_period(_site(), home1_imports(NOON))
    assert not [f for f in august.flags if f.startswith("fuel_adjustment_default")]


def test_config_validate_warns_of_a_gap_in_the_fuel_table(tmp_path):
    text = (ROOT / "configs" / "misono.yaml").read_text(encoding="utf-8")
    text = text.replace('"2026-09": "-1.60"', '"2026-11": "-1.60"')
    (tmp_path / "site.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "devices").symlink_to(ROOT / "configs" / "devices")
    result = CliRunner().invoke(app, ["config", "validate", str(tmp_path / "site.yaml")])
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines() == [
        f"{tmp_path / 'site.yaml'}: warning: tariffs[tepco-juryo-b@2025-04].fuel_cost_adjustment_by_month: "
        "no value for 2026-09, 2026-10 (periods there use fuel_cost_adjustment_jpy_per_kwh -1.50 and "
        "are flagged fuel_adjustment_default)"
    ]


def test_supply_demand_ratio_is_stored_without_exponent_and_verifies(tmp_path):
    # nobody has a surplus: G = 0, D = 1.0 -> the ratio 0 (once stored as "0E+1")
    s = settle_period(_site(), home1_imports(NOON))
    assert s.supply_demand_ratio == 0
    assert "E" not in period_to_dict(s)["supply_demand_ratio"]
    with Ledger(tmp_path / "ledger.sqlite", "misono") as store:
        SettlementBook(_site(), store).settle(home1_imports(NOON))
        (stored, _), = store.settlements()
        assert stored.supply_demand_ratio == s.supply_demand_ratio
        assert verify_ledger(store, _site()).ok


def test_a_tier_crossed_inside_a_period_is_priced_at_the_start_tier_unflagged():
    # 119.5 kWh this month, 1.0 more in the period: tier 1 ends at 120 kWh. Documented choice
    # (docs/settlement-rules.md): the whole period at tier 1, the utility bills tiers monthly.
    s = settle_period(_site(), home1_imports(NOON), {"home-1": D("119.5")})
    line = s.member("home-1")
    assert line.import_price_jpy_per_kwh == D("32.08")  # tier 1: 29.80 + 3.98 - 1.70
    assert (line.grid_import_jpy, line.grid_only_jpy) == (D("32.08"), D("32.08"))
    assert s.flags == ()
    after = settle_period(_site(), home1_imports(NOON), {"home-1": D("120")})
    assert after.member("home-1").import_price_jpy_per_kwh == D("38.68")  # tier 2 from 120 kWh
