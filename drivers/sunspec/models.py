"""SunSpec model definitions (from the pysunspec2 package's JSON files) and register codecs.

No register table is copied by hand: layouts, types, scale-factor links and not-implemented
sentinels come from the model definitions that ship with pysunspec2. Register values are
converted with pymodbus's ``convert_from_registers`` / ``convert_to_registers``.

Only the fixed top-level points of a model are decoded; repeating groups are laid out (so
emulators can build a complete, valid map) but not decoded.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pymodbus.client.mixin import ModbusClientMixin
from sunspec2 import mb as sunspec_mb
from sunspec2 import mdef as sunspec_mdef

_DT = ModbusClientMixin.DATATYPE

#: pymodbus data type for each SunSpec point type (strings handled apart).
_PYMODBUS_TYPE: dict[str, _DT] = {
    "int16": _DT.INT16,
    "sunssf": _DT.INT16,
    "uint16": _DT.UINT16,
    "enum16": _DT.UINT16,
    "bitfield16": _DT.UINT16,
    "acc16": _DT.UINT16,
    "count": _DT.UINT16,
    "pad": _DT.UINT16,
    "int32": _DT.INT32,
    "uint32": _DT.UINT32,
    "acc32": _DT.UINT32,
    "enum32": _DT.UINT32,
    "bitfield32": _DT.UINT32,
    "ipaddr": _DT.UINT32,
    "int64": _DT.INT64,
    "uint64": _DT.UINT64,
    "acc64": _DT.UINT64,
    "float32": _DT.FLOAT32,
    "float64": _DT.FLOAT64,
}

#: A scale factor outside this range is garbage, not a real device setting.
SCALE_FACTOR_RANGE = range(-10, 11)

Value = int | float | str | None


class ModelDefinitionMissing(LookupError):
    """No SunSpec definition is shipped for a model id."""


@dataclass(frozen=True)
class PointDef:
    """One top-level point of a SunSpec model.

    Attributes
    ----------
    name : str
    type : str
        SunSpec point type (``int16``, ``acc32``, ``string``, ...).
    size : int
        Length [registers].
    offset : int
        Offset from the model's ID register [registers].
    sf : int, str or None
        Fixed scale factor, name of the scale-factor point, or None.
    writable : bool
    units : str or None
    symbols : dict of str to int
    """

    name: str
    type: str
    size: int
    offset: int
    sf: int | str | None
    writable: bool
    units: str | None
    symbols: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelDef:
    """Layout of one SunSpec model.

    Attributes
    ----------
    model_id : int
    name : str
    points : dict of str to PointDef
        Fixed top-level points, including ``ID`` and ``L``.
    top_length : int
        Registers of the top-level points, including ID and L.
    full_length : int
        Registers of the whole model with one instance of each group whose count is fixed and
        none of groups whose count is given by a point, including ID and L.
    """

    model_id: int
    name: str
    points: Mapping[str, PointDef]
    top_length: int
    full_length: int
    group_filler: tuple[int, ...] = ()


def _point_size(pdef: dict) -> int:
    if pdef["type"] == "string":
        return int(pdef["size"])
    return int(sunspec_mb.point_type_info[pdef["type"]].len)


def _unimpl_registers(pdef: dict) -> list[int]:
    """Not-implemented registers for a raw JSON point definition."""
    if pdef["type"] in ("pad", "string"):
        return [0] * _point_size(pdef)
    data = sunspec_mb.create_unimpl_value(pdef["type"])
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _groups_filler(gdef: dict) -> list[int]:
    """Not-implemented registers for the sub-groups of a group (fixed counts only)."""
    regs: list[int] = []
    for sub in gdef.get("groups", ()):
        count = sub.get("count", 1)
        if isinstance(count, int):
            one = [r for p in sub.get("points", ()) for r in _unimpl_registers(p)]
            one += _groups_filler(sub)
            regs += one * count
    return regs


@functools.cache
def model_def(model_id: int) -> ModelDef:
    """Load the definition of ``model_id`` from pysunspec2's shipped JSON files.

    Raises
    ------
    ModelDefinitionMissing
        If pysunspec2 ships no definition for the id.
    """
    path = importlib.resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
    if not path.is_file():
        raise ModelDefinitionMissing(f"no SunSpec definition for model {model_id}")
    raw = sunspec_mdef.from_json_file(str(path))
    group = raw["group"]
    points: dict[str, PointDef] = {}
    offset = 0
    for pdef in group["points"]:
        size = _point_size(pdef)
        points[pdef["name"]] = PointDef(
            name=pdef["name"],
            type=pdef["type"],
            size=size,
            offset=offset,
            sf=pdef.get("sf"),
            writable=pdef.get("access") == "RW",
            units=pdef.get("units"),
            symbols={s["name"]: int(s["value"]) for s in pdef.get("symbols", ())},
        )
        offset += size
    filler = tuple(_groups_filler(group))
    return ModelDef(
        model_id=model_id,
        name=group["name"],
        points=points,
        top_length=offset,
        full_length=offset + len(filler),
        group_filler=filler,
    )


def _decode_raw(pdef: PointDef, regs: Sequence[int]) -> int | float | str | None:
    """Decode one point's registers to its raw value, None when not implemented."""
    if pdef.type == "string":
        text = ModbusClientMixin.convert_from_registers(list(regs), _DT.STRING)
        text = str(text).split("\x00", 1)[0].strip()
        return text or None
    value = ModbusClientMixin.convert_from_registers(list(regs), _PYMODBUS_TYPE[pdef.type])
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if not sunspec_mb.point_type_info[pdef.type].is_impl(value):
        return None
    return int(value)


def needed_points(mdef: ModelDef, names: Iterable[str]) -> list[str]:
    """``names`` plus the scale-factor points they refer to (unknown names are ignored)."""
    wanted = [n for n in names if n in mdef.points]
    sfs = [mdef.points[n].sf for n in wanted if isinstance(mdef.points[n].sf, str)]
    return list(dict.fromkeys(wanted + [sf for sf in sfs if sf in mdef.points]))


def span_of(mdef: ModelDef, names: Iterable[str]) -> int:
    """Registers from the ID register needed to cover ``names`` [registers]."""
    return max((mdef.points[n].offset + mdef.points[n].size for n in names), default=2)


def decode_model(
    mdef: ModelDef, regs: Sequence[int], names: Iterable[str] | None = None
) -> tuple[dict[str, Value], list[str]]:
    """Decode the top-level points of a model block, applying scale factors.

    Parameters
    ----------
    mdef : ModelDef
    regs : sequence of int
        Registers starting at the model's ID register; points beyond the end are None.
    names : iterable of str or None
        Decode only these points (and their scale factors); None decodes every point.

    Returns
    -------
    values : dict of str to value
        Scaled values in the units of the definition; None for not-implemented points, for
        points whose scale factor is not implemented or out of range, and for absent points.
    notes : list of str
        What was dropped and why (garbage scale factors).
    """
    chosen = list(mdef.points) if names is None else needed_points(mdef, names)
    raw: dict[str, Value] = {}
    for name in chosen:
        pdef = mdef.points[name]
        end = pdef.offset + pdef.size
        if pdef.type == "pad" or end > len(regs):
            raw[name] = None
            continue
        raw[name] = _decode_raw(pdef, regs[pdef.offset : end])
    values: dict[str, Value] = {}
    notes: list[str] = []
    for name in chosen:
        pdef = mdef.points[name]
        value = raw[name]
        if pdef.sf is None or value is None or pdef.type == "sunssf":
            values[name] = value
            continue
        sf = pdef.sf if isinstance(pdef.sf, int) else raw.get(pdef.sf)
        if sf is None:
            values[name] = None
            continue
        if int(sf) not in SCALE_FACTOR_RANGE:
            notes.append(f"model {mdef.model_id} {name}: scale factor {sf} out of range, dropped")
            values[name] = None
            continue
        # Round to the register's resolution so 0.1 % does not come out as 0.100000001.
        values[name] = round(float(value) * 10.0 ** int(sf), max(0, -int(sf)))
    return values, notes


def encode_raw(pdef: PointDef, raw: int | float | str | None) -> list[int]:
    """Encode a raw (unscaled) value to registers; None writes the not-implemented sentinel.

    Raises
    ------
    ValueError
        If the value does not fit the point's type.
    """
    if pdef.type == "string":
        text = "" if raw is None else str(raw)
        data = text.encode("utf-8")[: pdef.size * 2].ljust(pdef.size * 2, b"\x00")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if raw is None:
        if pdef.type == "pad":
            return [0] * pdef.size
        unimpl = sunspec_mb.create_unimpl_value(pdef.type)
        return [int.from_bytes(unimpl[i : i + 2], "big") for i in range(0, len(unimpl), 2)]
    dtype = _PYMODBUS_TYPE[pdef.type]
    if dtype in (_DT.FLOAT32, _DT.FLOAT64):
        return ModbusClientMixin.convert_to_registers(float(raw), dtype)
    bits = 16 * pdef.size
    signed = pdef.type in ("int16", "int32", "int64", "sunssf")
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= int(raw) <= high:
        raise ValueError(f"{pdef.name}={raw} does not fit {pdef.type}")
    return ModbusClientMixin.convert_to_registers(int(raw), dtype)


def to_raw(value: float, sf: int | None) -> int:
    """Unscale an engineering value with scale factor ``sf`` (value / 10**sf, rounded)."""
    return int(round(value / 10.0 ** (sf or 0)))


def scale_factor_of(mdef: ModelDef, name: str, raw_values: Mapping[str, Value]) -> int | None:
    """Scale factor that applies to point ``name`` given the model's raw point values."""
    sf = mdef.points[name].sf
    if sf is None or isinstance(sf, int):
        return sf
    found = raw_values.get(sf)
    return None if found is None else int(found)


def build_model_registers(mdef: ModelDef, raw_values: Mapping[str, Value]) -> list[int]:
    """Registers of a whole model (groups filled with not-implemented values).

    ``ID`` and ``L`` are filled in; points missing from ``raw_values`` are not implemented.
    """
    regs: list[int] = []
    for name, pdef in mdef.points.items():
        if name == "ID":
            regs += [mdef.model_id]
        elif name == "L":
            regs += [mdef.full_length - 2]
        else:
            regs += encode_raw(pdef, raw_values.get(name))
    return regs + list(mdef.group_filler)
