"""What a node's metering offers settlement: whether its grid meter keeps fixed 30-minute counters.

A Japanese low-voltage smart meter (ECHONET Lite class 0x0288, the B-route meter) freezes its
cumulative forward and reverse energy at every fixed 30-minute point (EPC 0xEA/0xEB, with the
point's time). Where a node's grid meter is such a meter, those values are its settlement
source (docs/settlement-readings.md); the daemon and the simulator ask this one predicate.
"""

from __future__ import annotations

from gridctl.config.devices import MeterDevice
from gridctl.config.echonet import ECHONET_CLASS_OF_KIND
from gridctl.config.site import Node, SiteConfig

#: ECHONET Lite class of the low-voltage smart electric energy meter.
SMART_METER_CLASS = ECHONET_CLASS_OF_KIND["meter"]


def keeps_fixed_points(site: SiteConfig, meter: MeterDevice) -> bool:
    """True when ``meter`` is reached over ECHONET Lite and its profile is a smart meter
    (0x0288) that answers 0xEA/0xEB (quirk ``fixed_counters``, true unless a maker's product
    lacks them)."""
    profile = site.device_profiles.get(meter.profile)
    if meter.protocol.echonet is None or profile is None or profile.echonet is None:
        return False
    return profile.echonet.class_code == SMART_METER_CLASS and profile.echonet.quirks.fixed_counters


def has_fixed_point_meter(site: SiteConfig, node: Node) -> bool:
    """True when ``node``'s grid meter keeps fixed 30-minute counters (its settlement source)."""
    meter = next((m for m in node.meters if m.role == "grid"), None)
    return meter is not None and keeps_fixed_points(site, meter)
