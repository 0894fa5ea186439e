"""Cross-field checks of a site: uniqueness, references, and combinations that make no sense.

Each problem is a (key path, message) pair so the loader can name file, line and key.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gridctl.config.devices import (
    SWITCH_KINDS,
    BatteryDevice,
    Protocol,
    PvInverterDevice,
    RelayBoardDevice,
    RouterDevice,
)
from gridctl.config.errors import format_key_path
from gridctl.config.site import SiteConfig
from gridctl.config.tariffs import ExportTariff, ImportTariff

Path = tuple[str | int, ...]
Problem = tuple[Path, str]


def cross_check(site: SiteConfig) -> list[Problem]:
    """All cross-field problems of ``site``, in file order (empty when the site is coherent)."""
    problems: list[Problem] = []
    checks = (_unique_ids, _unique_endpoints, _tariffs, _contracts, _profiles, _router_legs,
              _links, _shed_tiers, _relay_channels, _load_switches)
    for check in checks:
        problems.extend(check(site))
    return problems


def _duplicates(items: Iterable[tuple[Path, str]], what: str) -> list[Problem]:
    counts = Counter(ident for _, ident in items)
    return [(p, f"duplicate {what} id '{i}'") for p, i in items if counts[i] > 1]


def _unique_ids(site: SiteConfig) -> list[Problem]:
    nodes = [(("nodes", i, "id"), n.id) for i, n in enumerate(site.nodes)]
    devices = [
        (("nodes", i, "devices", j, "id"), d.id)
        for i, n in enumerate(site.nodes)
        for j, d in enumerate(n.devices)
    ]
    links = [(("links", i, "id"), link.id) for i, link in enumerate(site.links)]
    problems = _duplicates(nodes, "node") + _duplicates(devices, "device")
    problems += _duplicates(links, "link")
    for i, node in enumerate(site.nodes):
        for j, device in enumerate(node.devices):
            if isinstance(device, RouterDevice):
                legs = [(("nodes", i, "devices", j, "legs", k, "id"), leg.id)
                        for k, leg in enumerate(device.legs)]
                problems += _duplicates(legs, "leg")
    return problems


@dataclass(frozen=True)
class Endpoint:
    """Where a device answers: what makes two devices one. ``label`` is for messages only."""

    block: str
    identity: tuple[str | int, ...]
    label: str


#: Default TCP port of opc.tcp:// endpoints.
OPCUA_DEFAULT_PORT = 4840


def _canonical_host(host: str) -> str:
    """``host`` lower-cased, an IP address in its canonical form (``::0:1`` and ``::1`` agree)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def endpoint_of(protocol: Protocol, class_code: int | None = None) -> Endpoint | None:
    """The endpoint a protocol block addresses (Modbus: host, port, unit; OPC UA: the URL;
    ECHONET Lite: host, port and the object, class ``class_code`` and instance, on that node)."""
    if protocol.modbus is not None:
        mb = protocol.modbus
        host = _canonical_host(mb.host)
        return Endpoint("modbus", (host, mb.port, mb.unit_id),
                        f"{mb.host}:{mb.port} unit {mb.unit_id}")
    if protocol.opcua is not None:
        url = urlsplit(protocol.opcua.endpoint_url)
        host = _canonical_host(url.hostname or "")
        path = url.path.rstrip("/")
        return Endpoint("opcua", (host, url.port or OPCUA_DEFAULT_PORT, path),
                        protocol.opcua.endpoint_url)
    if protocol.echonet is not None:
        el = protocol.echonet
        eoj = f"0x{class_code:04X}" if class_code is not None else "?"
        return Endpoint("echonet", (_canonical_host(el.host), el.port, class_code or 0, el.instance),
                        f"{el.host}:{el.port} object {eoj} instance {el.instance}")
    return None


def _class_code(site: SiteConfig, profile_id: str) -> int | None:
    profile = site.device_profiles.get(profile_id)
    return profile.echonet.class_code if profile is not None and profile.echonet is not None else None


def _unique_endpoints(site: SiteConfig) -> list[Problem]:
    """Two devices on one endpoint would be read and written as one device twice."""
    first_at: dict[tuple[str, tuple[str | int, ...]], tuple[str, Path]] = {}
    problems: list[Problem] = []
    for i, node in enumerate(site.nodes):
        for j, device in enumerate(node.devices):
            endpoint = endpoint_of(device.protocol, _class_code(site, device.profile))
            if endpoint is None:
                continue
            path = ("nodes", i, "devices", j, "protocol", endpoint.block)
            key = (endpoint.block, endpoint.identity)
            if key not in first_at:
                first_at[key] = (device.id, path)
                continue
            other_id, other_path = first_at[key]
            problems.append((path, f"device '{device.id}' has the same endpoint ({endpoint.label}) "
                                   f"as device '{other_id}' at {format_key_path(other_path)}"))
    return problems


def _tariffs(site: SiteConfig) -> list[Problem]:
    problems: list[Problem] = []
    by_id: dict[str, list[int]] = {}
    for i, tariff in enumerate(site.tariffs):
        by_id.setdefault(tariff.id, []).append(i)
    for ident, indexes in by_id.items():
        kinds = {site.tariffs[i].kind for i in indexes}
        if len(kinds) > 1:
            problems.append((("tariffs", indexes[1], "kind"), f"tariff '{ident}' mixes kinds"))
        versions = sorted(indexes, key=lambda i: site.tariffs[i].valid_from)
        for a, b in zip(versions, versions[1:]):
            first = site.tariffs[a]
            if first.valid_to is None or first.valid_to > site.tariffs[b].valid_from:
                problems.append((("tariffs", b, "valid_from"),
                                 f"version overlaps an earlier version of tariff '{ident}'"))
    return problems


def _contracts(site: SiteConfig) -> list[Problem]:
    imports = {t.id for t in site.tariffs if isinstance(t, ImportTariff)}
    exports = {t.id for t in site.tariffs if isinstance(t, ExportTariff)}
    problems: list[Problem] = []
    for i, node in enumerate(site.nodes):
        base = ("nodes", i, "contract")
        if node.contract.tariff not in imports:
            problems.append((base + ("tariff",),
                             f"unknown import tariff '{node.contract.tariff}'"))
        buyback = node.contract.buyback_tariff
        if buyback is not None and buyback not in exports:
            problems.append((base + ("buyback_tariff",), f"unknown export tariff '{buyback}'"))
        if node.pv_inverters and buyback is None and node.grid is not None:
            problems.append((base + ("buyback_tariff",),
                             "a node with PV and a grid connection needs a buyback_tariff"))
        if node.contract.battery_export_allowed and not node.batteries:
            problems.append((base + ("battery_export_allowed",), "the node has no battery"))
    return problems


def _profiles(site: SiteConfig) -> list[Problem]:
    problems: list[Problem] = []
    for i, node in enumerate(site.nodes):
        for j, device in enumerate(node.devices):
            path = ("nodes", i, "devices", j)
            profile = site.device_profiles.get(device.profile)
            if profile is None:
                problems.append((path + ("profile",), f"unknown device profile '{device.profile}'"))
                continue
            if profile.kind != device.kind:
                problems.append((path + ("profile",),
                                 f"profile '{profile.id}' is for a {profile.kind}, not a {device.kind}"))
            problems.extend(_transport_problems(path, device, profile.protocol))
    return problems


def _transport_problems(path: Path, device, protocol: str) -> list[Problem]:  # noqa: ANN001
    """The device's protocol block against its profile's protocol (one line each)."""
    given = next(name for name in ("modbus", "opcua", "echonet")
                 if getattr(device.protocol, name) is not None)
    wanted = {"opcua_router": "opcua", "echonet_lite": "echonet"}.get(protocol, "modbus")
    if device.kind == "router" and given != "opcua":
        return [(path + ("protocol", given), f"a router speaks OPC UA: an '{given}' block cannot "
                                             "address it (give 'opcua')")]
    if given != wanted:
        return [(path + ("protocol", given), f"profile '{device.profile}' speaks {protocol}: "
                                             f"give the '{wanted}' protocol block, not '{given}'")]
    if given == "echonet" and device.kind == "meter" and device.role != "grid":
        return [(path + ("role",), "an ECHONET Lite meter is the node's B-route smart meter: "
                                   "role must be 'grid'")]
    return []


def _router_legs(site: SiteConfig) -> list[Problem]:
    problems: list[Problem] = []
    link_ids = {link.id for link in site.links}
    for i, node in enumerate(site.nodes):
        routers = [(j, d) for j, d in enumerate(node.devices) if isinstance(d, RouterDevice)]
        if len(routers) > 1:
            problems.append((("nodes", i, "devices", routers[1][0]), "a node has at most one router"))
        if not routers:
            continue
        j, router = routers[0]
        local = {d.id: d for d in node.devices}
        for k, leg in enumerate(router.legs):
            path = ("nodes", i, "devices", j, "legs", k)
            if leg.device is not None:
                target = local.get(leg.device)
                if target is None:
                    problems.append((path + ("device",), f"no device '{leg.device}' in node '{node.id}'"))
                elif target.kind != leg.kind.replace("pv", "pv_inverter"):
                    problems.append((path + ("device",), f"'{leg.device}' is a {target.kind}"))
            if leg.link is not None and leg.link not in link_ids:
                problems.append((path + ("link",), f"unknown link '{leg.link}'"))
            if leg.kind == "grid" and node.grid is None:
                problems.append((path + ("kind",), f"node '{node.id}' has no grid connection"))
        on_legs = {leg.device for leg in router.legs}
        for m, device in enumerate(node.devices):
            if isinstance(device, PvInverterDevice | BatteryDevice) and device.id not in on_legs:
                problems.append((("nodes", i, "devices", m, "id"),
                                 f"'{device.id}' needs a leg on router '{router.id}'"))
    return problems


def _links(site: SiteConfig) -> list[Problem]:
    routers = {router.id: router for _, router in site.routers()}
    problems: list[Problem] = []
    for i, link in enumerate(site.links):
        for end in ("from_router", "to_router"):
            ident = getattr(link, end)
            if ident not in routers:
                problems.append((("links", i, end), f"unknown router '{ident}'"))
            elif not any(leg.link == link.id for leg in routers[ident].legs):
                problems.append((("links", i, end),
                                 f"router '{ident}' has no 'link' leg for link '{link.id}'"))
        if link.from_router == link.to_router:
            problems.append((("links", i, "to_router"), "a link joins two different routers"))
    return problems


def _shed_tiers(site: SiteConfig) -> list[Problem]:
    tiers = {t.tier for t in site.islanding.shed_order}
    return [(("nodes", i, "load", "shed_tier"),
             f"tier {node.load.shed_tier} is not in islanding.shed_order")
            for i, node in enumerate(site.nodes) if node.load.shed_tier not in tiers]


def _switch_channels(device) -> int:  # noqa: ANN001 - config device union
    """Channels a switch device offers (an ECHONET Lite switch object has channel 0 only)."""
    rating = getattr(device, "rating", None)
    return getattr(rating, "channels", 1)


def _relay_channels(site: SiteConfig) -> list[Problem]:
    """A board cannot use more channels than its profile says it has."""
    problems: list[Problem] = []
    for i, node in enumerate(site.nodes):
        for j, device in enumerate(node.devices):
            profile = site.device_profiles.get(device.profile)
            if not isinstance(device, RelayBoardDevice) or profile is None or profile.relay is None:
                continue
            if device.rating.channels > profile.relay.channels:
                problems.append((("nodes", i, "devices", j, "rating", "channels"),
                                 f"{device.rating.channels} channels, but profile '{profile.id}' "
                                 f"has {profile.relay.channels}"))
    return problems


def _load_switches(site: SiteConfig) -> list[Problem]:
    """Every ``load.switches`` entry names a switch of its own node, each channel once."""
    owner = {d.id: (n.id, d) for n, d in site.all_devices()}
    seen: dict[tuple[str, int], Path] = {}
    problems: list[Problem] = []
    for i, node in enumerate(site.nodes):
        for k, switch in enumerate(node.load.switches):
            path: Path = ("nodes", i, "load", "switches", k)
            found = owner.get(switch.device)
            if found is None:
                problems.append((path + ("device",), f"unknown device '{switch.device}'"))
                continue
            node_id, device = found
            if node_id != node.id:
                problems.append((path + ("device",), f"'{switch.device}' belongs to node "
                                                     f"'{node_id}', not '{node.id}'"))
                continue
            if device.kind not in SWITCH_KINDS:
                problems.append((path + ("device",), f"'{switch.device}' is a {device.kind}, "
                                                     f"not a switch ({', '.join(SWITCH_KINDS)})"))
                continue
            channels = _switch_channels(device)
            if switch.channel >= channels:
                problems.append((path + ("channel",), f"channel {switch.channel} out of range: "
                                                      f"'{switch.device}' has channels 0..{channels - 1}"))
                continue
            key = (switch.device, switch.channel)
            if key in seen:
                problems.append((path + ("channel",), f"channel {switch.channel} of '{switch.device}' "
                                                      f"is already used at {format_key_path(seen[key])}"))
                continue
            seen[key] = path
    return problems
