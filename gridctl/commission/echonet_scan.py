"""``gridctl commission scan --echonet``: find ECHONET Lite nodes and describe their objects.

Each node answers the node profile's instance list (0x0EF001, EPC 0xD6) and maker code
(0x8A); each object its maker code and property maps (0x9F get, 0x9E set, 0x9D inf). Nodes
are asked by unicast ("force polling": works behind IGMP snooping and VLANs that drop
multicast) and, with ``multicast``, through the group 224.0.23.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.echonet.client import DiscoveredNode, EchonetClient
from drivers.echonet.knowledge import class_name
from drivers.profile import ECHONET_PORT
from gridctl.commission.scan import parse_target


@dataclass(frozen=True)
class ScannedObject:
    """One object of a node as found: what the scan table and ``--json`` show.

    Attributes
    ----------
    host : str
    port : int
    eoj : str
        ``0xCCCCII``: class group, class code and instance, in hexadecimal.
    class_code : int
    instance : int
    class_name : str
        The class from gridctl's knowledge, or ``unknown``.
    maker_code : int or None
        The object's maker code (0x8A), else the node's.
    get_epcs, set_epcs, inf_epcs : tuple of int
        The property maps 0x9F, 0x9E, 0x9D.
    """

    host: str
    port: int
    eoj: str
    class_code: int
    instance: int
    class_name: str
    maker_code: int | None
    get_epcs: tuple[int, ...]
    set_epcs: tuple[int, ...]
    inf_epcs: tuple[int, ...]

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "eoj": self.eoj, "class_code": f"0x{self.class_code:04X}",
                "instance": self.instance, "class": self.class_name,
                "maker_code": None if self.maker_code is None else f"0x{self.maker_code:06X}",
                "get": [f"0x{e:02X}" for e in self.get_epcs], "set": [f"0x{e:02X}" for e in self.set_epcs],
                "inf": [f"0x{e:02X}" for e in self.inf_epcs]}


def parse_hosts(targets: Sequence[str]) -> list[tuple[str, int]]:
    """``HOST[:PORT]`` texts -> (host, port), port 3610 by default; ValueError with a clear message."""
    return [parse_target(t, default_port=ECHONET_PORT) for t in targets]


def _name(class_code: int) -> str:
    name = class_name(class_code)
    return "unknown" if name.startswith("0x") else name


def objects_of(nodes: Sequence[DiscoveredNode]) -> list[ScannedObject]:
    """One row per object of every node, in host order."""
    rows = []
    for node in nodes:
        for obj in node.objects:
            code = obj.eoj.class_code
            rows.append(ScannedObject(
                node.host, node.port, str(obj.eoj), code, obj.eoj.instance,
                _name(code), obj.maker_code if obj.maker_code is not None else node.maker_code,
                tuple(sorted(obj.get_map)), tuple(sorted(obj.set_map)), tuple(sorted(obj.inf_map))))
    return rows


async def scan_echonet(hosts: Sequence[tuple[str, int]], *, multicast: bool, timeout_s: float) -> list[ScannedObject]:
    """Discover nodes (unicast to ``hosts``, plus multicast if asked) and list their objects."""
    async with EchonetClient(timeout_s=timeout_s, retries=1) as client:
        nodes = await client.discover(timeout_s, multicast=multicast, hosts=list(hosts))
    return objects_of(nodes)
