"""sim.sitegen: generated sites of other shapes validate through the real loader and the CLI."""

from __future__ import annotations

from collections import deque
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridctl.cli import app
from gridctl.config import SiteConfig, load_profiles, load_site
from sim.sitegen import SHAPES, BlockShape, generate_site, topology_edges, write_site

ROOT = Path(__file__).resolve().parents[2]


@cache
def _site(shape: BlockShape) -> SiteConfig:
    return generate_site(shape)[1]


def _adjacency(site: SiteConfig) -> dict[str, set[str]]:
    """Node id -> neighbouring node ids, read from the site's links."""
    node_of = {router.id: node.id for node, router in site.routers()}
    adjacent: dict[str, set[str]] = {node.id: set() for node in site.nodes}
    for link in site.links:
        a, b = node_of[link.from_router], node_of[link.to_router]
        adjacent[a].add(b)
        adjacent[b].add(a)
    return adjacent


def _reachable(adjacent: dict[str, set[str]], start: str) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for other in adjacent[queue.popleft()] - seen:
            seen.add(other)
            queue.append(other)
    return seen


def _expected_links(shape: BlockShape) -> int:
    members = shape.homes + shape.store + shape.mall
    return members if shape.topology == "ring" and members >= 3 else members - 1


_VARIANTS = [
    BlockShape(f"{topology}-{homes}-{store:d}{mall:d}", topology, homes, store=store, mall=mall,
               tree_branching=branching)
    for topology in ("chain", "ring", "star", "tree")
    for homes, store, mall, branching in ((1, False, False, 2), (1, True, False, 3),
                                          (2, False, True, 2), (7, True, True, 3))
]


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_catalogue_shape_validates_with_its_members(name: str) -> None:
    shape = SHAPES[name]
    text, site = generate_site(shape)
    assert site.site.id == name and f"id: {name}" in text
    assert [node.id for node in site.nodes] == list(shape.member_ids)
    assert sum(node.member_type == "home" for node in site.nodes) == shape.homes
    assert all(node.grid is not None and node.meters for node in site.nodes)
    # the round trip through a file gives the same site
    assert generate_site(shape)[1] == site


@pytest.mark.parametrize("shape", list(SHAPES.values()) + _VARIANTS, ids=lambda s: s.name)
def test_topology_link_count_and_connected(shape: BlockShape) -> None:
    site = _site(shape)
    assert len(site.links) == _expected_links(shape)
    adjacent = _adjacency(site)
    assert _reachable(adjacent, site.nodes[0].id) == {node.id for node in site.nodes}
    degrees = sorted(len(others) for others in adjacent.values())
    members = len(site.nodes)
    if shape.topology == "ring" and members >= 3:
        assert set(degrees) == {2}
    elif shape.topology == "chain" and members >= 2:
        assert degrees[:2] == [1, 1] and max(degrees) <= 2
    elif shape.topology == "star" and members >= 2:
        hub = "mall" if shape.mall else "home-1"
        assert len(adjacent[hub]) == members - 1
    elif shape.topology == "tree":
        assert max(degrees, default=0) <= shape.tree_branching + 1


def test_tree_hangs_the_store_under_the_mall_with_the_wide_link() -> None:
    shape = SHAPES["tree9"]
    edges = topology_edges(shape)
    children: dict[str, int] = {}
    for parent, _ in edges:
        children[parent] = children.get(parent, 0) + 1
    assert edges[0] == ("mall", "store")
    assert max(children.values()) == shape.tree_branching == 3
    link = {link.id: link for link in _site(shape).links}["link-mall-store"]
    assert link.capacity_kw == 30.0
    assert {link.capacity_kw for link in _site(shape).links} == {10.0, 30.0}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_homes_without_pv_or_battery_have_neither_device_nor_leg(name: str) -> None:
    shape, site = SHAPES[name], _site(SHAPES[name])
    for k in range(1, shape.homes + 1):
        node = site.node(f"home-{k}")
        assert node.router is not None
        leg_kinds = [leg.kind for leg in node.router.legs]
        has_pv, has_battery = k not in shape.homes_without_pv, k not in shape.homes_without_battery
        assert len(node.pv_inverters) == leg_kinds.count("pv") == int(has_pv)
        assert len(node.batteries) == leg_kinds.count("battery") == int(has_battery)
        if not has_battery:
            assert node.contract.battery_export_allowed is False


def test_catalogue_really_has_homes_without_pv_and_battery() -> None:
    chain = _site(SHAPES["chain12"])
    assert [n.id for n in chain.nodes if n.member_type == "home" and not n.pv_inverters] == [
        "home-3", "home-8"]
    assert [n.id for n in chain.nodes if not n.batteries] == ["home-5"]
    ring = _site(SHAPES["ring4-nobattery"])
    assert sum(not n.batteries for n in ring.nodes) == 2
    assert sum(not n.pv_inverters for n in ring.nodes) == 1
    assert {n.member_type for n in _site(SHAPES["star6-homes-only"]).nodes} == {"home"}


@pytest.mark.parametrize(("name", "charge"), [("chain12", 1800.0), ("chain12-nodemand", 0.0),
                                              ("tree9", 1800.0)])
def test_demand_charge_only_on_store_and_mall(name: str, charge: float) -> None:
    for node in _site(SHAPES[name]).nodes:
        expected = charge if node.member_type in ("store", "mall") else 0.0
        assert node.contract.demand_charge_jpy_per_kw_month == expected, node.id
        if node.member_type != "home":
            assert node.contract.demand_window_months == 12
            assert node.contract.contract_kw is not None
        else:
            assert node.contract.contract_amperes_a is not None


def test_fit_homes_battery_export_flag() -> None:
    shape = BlockShape("export", "chain", 6, homes_without_battery=(2,),
                       fit_homes_battery_export_allowed=True)
    site = _site(shape)
    flags = {n.id: n.contract.battery_export_allowed for n in site.nodes}
    fit = {n.id for n in site.nodes if n.contract.buyback_tariff == "fit-fy2025"}
    assert flags["home-1"] is True and flags["home-2"] is False  # home 2 has no battery
    assert all(not flags[i] for i in flags if i not in fit)  # post-FIT homes, store, mall
    assert not any(n.contract.battery_export_allowed for n in _site(SHAPES["chain12"]).nodes)


def test_copies_misono_policies_and_shape() -> None:
    misono = load_site(ROOT / "configs" / "misono.yaml")
    site = _site(BlockShape("misono-like", "ring", 5, homes_without_battery=(5,)))
    assert site.tariffs == misono.tariffs
    assert (site.market, site.islanding) == (misono.market, misono.islanding)
    assert site.control.model_copy(update={"socket_path": misono.control.socket_path}) == \
        misono.control
    assert str(site.control.socket_path) == "var/misono-like/gridctl.sock"
    assert sorted(l.id for l in site.links) == sorted(l.id for l in misono.links)
    for ours, theirs in zip(site.nodes, misono.nodes, strict=True):
        assert [(d.id, d.kind, d.profile) for d in ours.devices] == \
            [(d.id, d.kind, d.profile) for d in theirs.devices]
        assert [b.rating for b in ours.batteries] == [b.rating for b in theirs.batteries]
        assert ours.load.profile == theirs.load.profile
        assert ours.load.shed_tier == theirs.load.shed_tier
        assert ours.contract.buyback_tariff == theirs.contract.buyback_tariff


def test_inline_profiles_equal_configs_devices() -> None:
    """Every profile a generated site inlines is the shipped one (generated sites use the
    SunSpec, router and relay-board profiles; the ECHONET Lite ones are not inlined)."""
    site = _site(SHAPES["chain12"])
    shipped = load_profiles(ROOT / "configs" / "devices")
    assert {"generic-sunspec-inverter", "generic-sunspec-battery", "gridctl-dgr"} <= set(site.device_profiles)
    assert {k: shipped[k] for k in site.device_profiles} == dict(site.device_profiles)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_endpoints_are_unique_loopback_ports(name: str) -> None:
    site = _site(SHAPES[name])
    modbus = [d.protocol.modbus for _, d in site.all_devices() if d.protocol.modbus]
    opcua = [d.protocol.opcua.endpoint_url for _, d in site.all_devices() if d.protocol.opcua]
    assert len(modbus) + len(opcua) == len(site.all_devices())
    assert len({m.port for m in modbus}) == len(modbus) and min(m.port for m in modbus) == 20000
    assert {m.host for m in modbus} == {"127.0.0.1"}
    assert len(set(opcua)) == len(opcua) == len(site.nodes)
    certificate = site.routers()[0][1].protocol.opcua.certificate_path
    assert str(certificate).startswith(f"var/{name}/pki/")


def test_written_file_validates_with_the_cli(tmp_path: Path) -> None:
    path = write_site(SHAPES["tree9"], tmp_path / "sites")
    assert path == tmp_path / "sites" / "tree9.yaml"
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "ok: site 'tree9'" in result.output and "11 nodes" in result.output


@pytest.mark.parametrize("bad", [
    {"name": "Upper", "topology": "chain", "homes": 3},
    {"name": "x", "topology": "chain", "homes": 0},
    {"name": "x", "topology": "mesh", "homes": 3},
    {"name": "x", "topology": "tree", "homes": 3, "tree_branching": 4},
    {"name": "x", "topology": "chain", "homes": 3, "homes_without_pv": (4,)},
    {"name": "x", "topology": "chain", "homes": 3, "home_battery_kw": (4.0,)},
])
def test_bad_shape_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="BlockShape"):
        BlockShape(**bad)  # type: ignore[arg-type]
