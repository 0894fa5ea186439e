"""A valid site dumped to YAML reloads equal (hypothesis over the reference site's knobs)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from gridctl.config import SiteConfig, load_site

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = load_site(ROOT / "configs" / "misono.yaml")

prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("99.99"), places=2)


@st.composite
def sites(draw) -> SiteConfig:
    """The reference site with drawn control, market, battery, load and tariff values."""
    data = REFERENCE.model_dump(mode="json", exclude={"device_profiles"})
    data["device_profiles_dir"] = str(ROOT / "configs" / "devices")
    step = draw(st.sampled_from([1, 2, 3, 5, 6, 10, 15, 30]))
    data["control"].update(
        plan_step_min=step,
        horizon_h=step * draw(st.integers(1, 96)) / 60,
        poll_period_s=draw(st.floats(0.2, 10, allow_nan=False)),
        mip_gap_pct=draw(st.floats(0, 5, allow_nan=False)),
    )
    data["control"]["setpoint_expiry_s"] = data["control"]["poll_period_s"] * 5 + 1
    data["control"]["replan_period_s"] = draw(st.integers(60, 3600))
    data["market"]["mechanism"] = draw(st.sampled_from(["sdr", "mmr", "uniform_auction"]))
    data["market"]["platform_fee_jpy_per_kwh"] = str(draw(prices))
    for node in data["nodes"]:
        node["load"]["annual_kwh"] = draw(st.floats(100, 1e6, allow_nan=False))
        node["load"]["critical_share_pct"] = draw(st.floats(0, 100, allow_nan=False))
        for device in node["devices"]:
            if device["kind"] == "battery":
                low = draw(st.floats(0, 50, allow_nan=False))
                device["rating"].update(
                    capacity_kwh=draw(st.floats(0.5, 500, allow_nan=False)),
                    soc_min_pct=low,
                    soc_max_pct=draw(st.floats(low + 1, 100, allow_nan=False)),
                )
    tier = data["tariffs"][0]["energy_tiers"][0]
    tier["price_jpy_per_kwh"] = str(draw(prices))
    return SiteConfig.model_validate(data | {"device_profiles": REFERENCE.model_dump(
        mode="json")["device_profiles"]})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(site=sites())
def test_dump_and_reload_is_identity(site: SiteConfig, tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("roundtrip")
    path = folder / "site.yaml"
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(site.model_dump(mode="json"), handle)
    assert load_site(path) == site
