"""Which nodes settle from fixed 30-minute counters: one predicate over the site file."""

from pathlib import Path

from gridctl.config import load_site
from gridctl.config.metering import has_fixed_point_meter
from gridctl.settlement.timing import fixed_point_channels

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

#: A smart meter whose maker left out 0xEA/0xEB (profile quirk ``fixed_counters: false``).
NO_FIXED_PROFILE = """
device_profiles:
  meter-without-fixed-points:
    id: meter-without-fixed-points
    vendor: Example
    kind: meter
    protocol: echonet_lite
    echonet: {class_code: 0x0288, quirks: {fixed_counters: false}}
"""


def _variant(tmp_path: Path, edit) -> Path:
    """misono-echonet.yaml with ``edit`` applied to its text, next to a link to the profiles."""
    text = (CONFIGS / "misono-echonet.yaml").read_text()
    text = text.replace("device_profiles_dir: devices", f"device_profiles_dir: {CONFIGS / 'devices'}")
    path = tmp_path / "site.yaml"
    path.write_text(edit(text))
    return path


def test_smart_meters_over_echonet_are_fixed_point_meters_sunspec_meters_are_not():
    site = load_site(CONFIGS / "misono-echonet.yaml")
    nodes = {n.id: n for n in site.nodes}
    assert has_fixed_point_meter(site, nodes["home-3"])
    assert not has_fixed_point_meter(site, nodes["mall"])  # a SunSpec meter: live samples
    assert fixed_point_channels(load_site(CONFIGS / "misono.yaml")) == []


def test_a_smart_meter_whose_profile_lacks_fixed_counters_is_not(tmp_path):
    def edit(text: str) -> str:
        text = text.replace("profile: generic-echonet-smart-meter ", "profile: meter-without-fixed-points ", 1)
        return text + NO_FIXED_PROFILE

    site = load_site(_variant(tmp_path, edit))
    assert [m for m, _ in fixed_point_channels(site)] == ["home-2", "home-3", "home-4", "home-5"]
    assert site.node("home-1").meters[0].profile == "meter-without-fixed-points"
