"""ECHONET Lite class knowledge, loaded from ``classes.yaml``, and EDT value conversion.

The knowledge is data (EPC, size, type, unit, scale, access, sign, "no data" sentinels per
class); this module only interprets it. ``decode_value(0x027D, 0xD3, edt)`` gives the
battery's signed power [W]; ``encode_value`` is its inverse. EPCs a class does not list fall
back to the device super class (0x0000).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Union

from ruamel.yaml import YAML

from drivers.echonet.frame import Eoj

CLASSES_FILE = Path(__file__).with_name("classes.yaml")
SUPER_CLASS = 0x0000

#: What a decoded EDT can be, by type: unsigned/signed -> int or float (scaled); enum -> str
#: or float label; date_time -> naive datetime (the device's local time); ascii -> str;
#: raw -> bytes; bitmap -> int; property_map -> frozenset of EPCs; instance_list -> tuple
#: of Eoj; class_list -> tuple of 16-bit class codes; composite -> tuple of parts;
#: None -> the device's "no data" sentinel.
Value = Union[int, float, str, bytes, datetime, frozenset, tuple, None]


class KnowledgeError(ValueError):
    """A value that does not fit the class knowledge (wrong size, unknown enum, unknown EPC)."""


@dataclass(frozen=True)
class Part:
    """One part of a composite property."""

    type: str
    size: int
    repeat: int = 1


@dataclass(frozen=True)
class EpcSpec:
    """What the specification says about one property of one class.

    Attributes
    ----------
    epc : int
    name : str
    size : int
        EDT size [bytes]; 0 = variable.
    type : str
        unsigned, signed, enum, date_time, ascii, raw, bitmap, property_map, instance_list,
        class_list or composite.
    unit : str
        Unit of the decoded value ('' when none).
    scale : float
        Multiplier from the raw integer to ``unit``.
    access : frozenset of str
        Subset of {get, set, inf}.
    values : tuple of (int, str or float)
        Enum codes and their labels.
    sign : str
        Direction of a positive signed value on the wire ('' when unsigned).
    no_data : frozenset of int
        Raw values meaning "no measurement".
    maximum : int or None
        Largest valid raw value of an unsigned property (beyond: garbage, refused).
    parts : tuple of Part
        Composite layout.
    source : str
        Where the fact came from.
    """

    epc: int
    name: str
    size: int
    type: str
    unit: str = ""
    scale: float = 1.0
    access: frozenset[str] = frozenset({"get"})
    values: tuple[tuple[int, Union[str, float]], ...] = ()
    sign: str = ""
    no_data: frozenset[int] = frozenset()
    maximum: int | None = None
    parts: tuple[Part, ...] = ()
    source: str = ""

    def code_of(self, label: Union[str, float]) -> int:
        """The enum code of ``label``."""
        for code, known in self.values:
            if known == label:
                return code
        raise KnowledgeError(f"EPC 0x{self.epc:02X} ({self.name}): {label!r} is not one of "
                             f"{[v for _, v in self.values]}")


@dataclass(frozen=True)
class ClassSpec:
    """One object class: its code, name and properties (own, not inherited)."""

    class_code: int
    name: str
    properties: tuple[EpcSpec, ...]
    source: str = ""


def _hex(text: object) -> int:
    return int(str(text), 0)


def _parse_epc(entry: dict) -> EpcSpec:
    return EpcSpec(
        epc=_hex(entry["epc"]),
        name=entry["name"],
        size=int(entry.get("size", 0)),
        type=entry["type"],
        unit=str(entry.get("unit", "")),
        scale=float(entry.get("scale", 1.0)),
        access=frozenset(entry.get("access", ["get"])),
        values=tuple((_hex(k), v) for k, v in (entry.get("values") or {}).items()),
        sign=str(entry.get("sign", "")),
        no_data=frozenset(_hex(v) for v in entry.get("no_data", [])),
        maximum=_hex(entry["max"]) if "max" in entry else None,
        parts=tuple(Part(p["type"], int(p["size"]), int(p.get("repeat", 1)))
                    for p in entry.get("parts", [])),
        source=str(entry.get("src", "")),
    )


@cache
def load_classes(path: Path = CLASSES_FILE) -> dict[int, ClassSpec]:
    """All classes in ``path``, keyed by 16-bit class code (cached)."""
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    classes = {}
    for entry in data["classes"]:
        spec = ClassSpec(
            class_code=_hex(entry["class_code"]),
            name=entry["name"],
            properties=tuple(_parse_epc(p) for p in entry.get("properties") or ()),
            source=str(entry.get("src", "")),
        )
        classes[spec.class_code] = spec
    return classes


@cache
def _epc_index() -> dict[tuple[int, int], EpcSpec]:
    """Every known ``(class_code, epc)``, built once (decoding runs per EPC per poll)."""
    return {(code, prop.epc): prop for code, spec in load_classes().items() for prop in spec.properties}


def epc_spec(class_code: int, epc: int) -> EpcSpec:
    """The spec of ``epc`` in ``class_code`` (or the super class); KnowledgeError if unknown."""
    index = _epc_index()
    spec = index.get((class_code, epc)) or index.get((SUPER_CLASS, epc))
    if spec is None:
        raise KnowledgeError(f"class 0x{class_code:04X} has no known EPC 0x{epc:02X}")
    return spec


def class_name(class_code: int) -> str:
    """Name of a known class, or its hex code."""
    spec = load_classes().get(class_code)
    return spec.name if spec else f"0x{class_code:04X}"


# ---- decoding ------------------------------------------------------------------------------


def decode_value(class_code: int, epc: int, edt: bytes) -> Value:
    """Decode ``edt`` of ``epc`` in ``class_code`` per the knowledge."""
    spec = epc_spec(class_code, epc)
    if spec.size and len(edt) != spec.size:
        raise KnowledgeError(f"class 0x{class_code:04X} EPC 0x{epc:02X} ({spec.name}): "
                             f"{len(edt)} bytes, expected {spec.size}")
    return _decode_typed(spec, spec.type, edt)


def _decode_typed(spec: EpcSpec, kind: str, edt: bytes) -> Value:
    if kind in ("unsigned", "signed"):
        raw = int.from_bytes(edt, "big", signed=False)
        if raw in spec.no_data:
            return None
        if spec.maximum is not None and raw > spec.maximum:
            raise KnowledgeError(f"EPC 0x{spec.epc:02X} ({spec.name}): raw value {raw} above "
                                 f"the specified maximum {spec.maximum}")
        number = int.from_bytes(edt, "big", signed=kind == "signed")
        return number * spec.scale if spec.scale != 1.0 else number
    if kind == "enum":
        code = int.from_bytes(edt, "big")
        for known, label in spec.values:
            if known == code:
                return label
        raise KnowledgeError(f"EPC 0x{spec.epc:02X} ({spec.name}): code 0x{code:02X} is not "
                             f"one of {[f'0x{k:02X}' for k, _ in spec.values]}")
    if kind == "bitmap":
        return int.from_bytes(edt, "big")
    if kind == "ascii":
        return edt.rstrip(b"\x00 ").decode("ascii", errors="replace")
    if kind == "raw":
        return bytes(edt)
    if kind == "date_time":
        return _decode_date_time(spec, edt)
    if kind == "property_map":
        return decode_property_map(edt)
    if kind == "instance_list":
        return decode_instance_list(edt)
    if kind == "class_list":
        return _decode_class_list(edt)
    if kind == "composite":
        return _decode_composite(spec, edt)
    raise KnowledgeError(f"EPC 0x{spec.epc:02X}: unknown type {kind!r} in the class knowledge")


def _decode_date_time(spec: EpcSpec, edt: bytes) -> datetime:
    try:
        return datetime(int.from_bytes(edt[0:2], "big"), edt[2], edt[3], edt[4], edt[5], edt[6])
    except (ValueError, IndexError) as exc:
        raise KnowledgeError(f"EPC 0x{spec.epc:02X} ({spec.name}): bad date-time "
                             f"{edt.hex()}: {exc}") from None


def _decode_composite(spec: EpcSpec, edt: bytes) -> tuple:
    out: list = []
    pos = 0
    for part in spec.parts:
        items = []
        for _ in range(part.repeat):
            chunk = edt[pos:pos + part.size]
            if len(chunk) != part.size:
                raise KnowledgeError(f"EPC 0x{spec.epc:02X} ({spec.name}): EDT too short")
            sub = EpcSpec(spec.epc, spec.name, part.size, part.type, no_data=spec.no_data)
            items.append(_decode_typed(sub, part.type, chunk))
            pos += part.size
        out.append(items[0] if part.repeat == 1 else tuple(items))
    return tuple(out)


def decode_property_map(edt: bytes) -> frozenset[int]:
    """A property map (0x9D/0x9E/0x9F): count, then EPCs (<16) or a 16-byte bitmap."""
    if not edt:
        raise KnowledgeError("empty property map")
    count = edt[0]
    if count < 16:
        if len(edt) != 1 + count:
            raise KnowledgeError(f"property map lists {count} EPCs in {len(edt) - 1} bytes")
        return frozenset(edt[1:])
    if len(edt) != 17:
        raise KnowledgeError(f"property map of {count} EPCs needs 17 bytes, got {len(edt)}")
    epcs = {0x80 + (bit << 4) + low for low in range(16) for bit in range(8)
            if edt[1 + low] >> bit & 1}
    return frozenset(epcs)


def encode_property_map(epcs: frozenset[int] | set[int]) -> bytes:
    """Inverse of :func:`decode_property_map`."""
    ordered = sorted(epcs)
    if len(ordered) < 16:
        return bytes([len(ordered), *ordered])
    bitmap = bytearray(16)
    for epc in ordered:
        bitmap[epc & 0x0F] |= 1 << ((epc >> 4) - 8)
    return bytes([len(ordered)]) + bytes(bitmap)


def decode_instance_list(edt: bytes) -> tuple[Eoj, ...]:
    """Instance list (0xD5/0xD6): count, then 3-byte EOJs."""
    if not edt or len(edt) != 1 + 3 * edt[0]:
        raise KnowledgeError(f"instance list of {len(edt)} bytes does not match its count")
    return tuple(Eoj.from_bytes(edt[1 + 3 * i:4 + 3 * i]) for i in range(edt[0]))


def encode_instance_list(eojs: tuple[Eoj, ...]) -> bytes:
    """Inverse of :func:`decode_instance_list`."""
    return bytes([len(eojs)]) + b"".join(e.to_bytes() for e in eojs)


def _decode_class_list(edt: bytes) -> tuple[int, ...]:
    if not edt or len(edt) != 1 + 2 * edt[0]:
        raise KnowledgeError(f"class list of {len(edt)} bytes does not match its count")
    return tuple(int.from_bytes(edt[1 + 2 * i:3 + 2 * i], "big") for i in range(edt[0]))


# ---- encoding ------------------------------------------------------------------------------


def encode_value(class_code: int, epc: int, value: Value) -> bytes:
    """Encode ``value`` of ``epc`` in ``class_code`` per the knowledge (inverse of decode)."""
    spec = epc_spec(class_code, epc)
    return _encode_typed(spec, spec.type, spec.size, value)


def _encode_typed(spec: EpcSpec, kind: str, size: int, value: Value) -> bytes:
    where = f"EPC 0x{spec.epc:02X} ({spec.name})"
    if kind in ("unsigned", "signed"):
        number = round(float(value) / spec.scale) if spec.scale != 1.0 else int(value)
        try:
            return number.to_bytes(size, "big", signed=kind == "signed")
        except OverflowError:
            raise KnowledgeError(f"{where}: {value} does not fit {size} bytes") from None
    if kind == "enum":
        return spec.code_of(value).to_bytes(size or 1, "big")
    if kind == "bitmap":
        return int(value).to_bytes(size, "big")
    if kind == "ascii":
        return str(value).encode("ascii").ljust(size, b"\x00")[: size or None]
    if kind == "raw":
        return bytes(value)
    if kind == "date_time":
        return (value.year.to_bytes(2, "big")
                + bytes((value.month, value.day, value.hour, value.minute, value.second)))
    if kind == "property_map":
        return encode_property_map(set(value))
    if kind == "instance_list":
        return encode_instance_list(tuple(value))
    if kind == "class_list":
        return bytes([len(value)]) + b"".join(c.to_bytes(2, "big") for c in value)
    if kind == "composite":
        out = b""
        for part, item in zip(spec.parts, value, strict=True):
            items = item if part.repeat > 1 else (item,)
            for sub_value in items:
                out += _encode_typed(spec, part.type, part.size, sub_value)
        return out
    raise KnowledgeError(f"{where}: unknown type {kind!r} in the class knowledge")
