"""``gridctl commission scan``: find a SunSpec map and list its models and identity."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.capabilities import DeviceIdentity
from drivers.profile import ModbusEndpoint
from drivers.sunspec.client import SunSpecClient
from drivers.sunspec.models import ModelDefinitionMissing, model_def


@dataclass(frozen=True)
class ScannedModel:
    """One model in the chain: id, SunSpec name, length L [registers] and start register."""

    model_id: int
    name: str
    length: int
    address: int


@dataclass(frozen=True)
class ScanResult:
    """What a scan found."""

    endpoint: ModbusEndpoint
    base_address: int
    models: list[ScannedModel]
    identity: DeviceIdentity | None


def parse_target(target: str, default_port: int = 502) -> tuple[str, int]:
    """``HOST[:PORT]`` (IPv6 as ``[addr]:port``) -> (host, port); ValueError with a clear message."""
    text = target.strip()
    if not text:
        raise ValueError("empty target: expected HOST[:PORT]")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") or str(default_port)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, str(default_port)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"bad port {port_text!r} in {target!r}: expected 1-65535")
    if not host:
        raise ValueError(f"no host in {target!r}")
    return host, int(port_text)


def _name(model_id: int) -> str:
    try:
        return model_def(model_id).name
    except ModelDefinitionMissing:
        return "(unknown to pysunspec2)"


async def scan(endpoint: ModbusEndpoint) -> ScanResult:
    """Discover the base, walk the chain and read the common model; raises DeviceError."""
    client = SunSpecClient(endpoint)
    try:
        await client.connect()
        identity = None
        if client.has_model(1):
            values, _ = await client.read_model(1)
            identity = DeviceIdentity(values.get("Mn"), values.get("Md"), values.get("SN"), values.get("Vr"))
        models = [ScannedModel(m.model_id, _name(m.model_id), m.length, m.address) for m in client.chain]
        assert client.base_address is not None
        return ScanResult(endpoint, client.base_address, models, identity)
    finally:
        await client.close()
