"""Site configuration: pydantic models (frozen, unknown keys forbidden) and the YAML loader.

Everything else in gridctl receives a validated :class:`SiteConfig`; nothing re-reads YAML.
"""

from gridctl.config.devices import (
    BatteryDevice,
    DeviceProfile,
    MeterDevice,
    PvInverterDevice,
    RouterDevice,
    RouterLeg,
    link_leg_ids,
)
from gridctl.config.errors import ConfigError, ConfigIssue
from gridctl.config.loader import load_profiles, load_site
from gridctl.config.site import Contract, Link, LoadSpec, Node, SiteConfig, SiteInfo
from gridctl.config.tariffs import ExportTariff, ImportTariff

__all__ = [
    "BatteryDevice", "ConfigError", "ConfigIssue", "Contract", "DeviceProfile", "ExportTariff",
    "ImportTariff", "Link", "LoadSpec", "MeterDevice", "Node", "PvInverterDevice", "RouterDevice", "link_leg_ids",
    "RouterLeg", "SiteConfig", "SiteInfo", "load_profiles", "load_site",
]
