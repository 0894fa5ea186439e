"""Register map of an emulated SunSpec device: layout, scale factors, static and live points.

Pure: builds register images from model definitions (pysunspec2's JSON via
``drivers.sunspec.models``) and raw point values. The server in ``sunspec_server`` owns the
live state and calls these to re-encode points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from drivers.sunspec.client import SUNSPEC_MARKER
from drivers.sunspec.models import ModelDef, Value, build_model_registers, encode_raw, model_def


@dataclass(frozen=True)
class Identity:
    """Common model (1) strings."""

    manufacturer: str = "gridctl"
    model: str = "emulated"
    serial: str = "EMU-0001"
    version: str = "1.0.0"


def scale_factor_for(max_abs: float, signed: bool, bits: int = 16) -> int:
    """Smallest scale factor >= 0 such that ``max_abs`` fits a register of ``bits`` bits."""
    limit = 2 ** (bits - 1) - 1 if signed else 2**bits - 2
    if max_abs <= limit:
        return 0
    return int(math.ceil(math.log10(max_abs / limit)))


@dataclass(frozen=True)
class RegisterMap:
    """A device's SunSpec map.

    Attributes
    ----------
    base_address : int
    models : tuple of int
        Model ids in chain order.
    addresses : dict of int to int
        Model id -> register of its ID point.
    registers : list of int
        Initial image from ``base_address`` to the end marker (inclusive of its length word).
    """

    base_address: int
    models: tuple[int, ...]
    addresses: Mapping[int, int]
    registers: list[int]


def build_map(base_address: int, models: Sequence[tuple[int, Mapping[str, Value]]]) -> RegisterMap:
    """Lay out "SunS", each model with its initial raw values, and the end model."""
    regs = list(SUNSPEC_MARKER)
    addresses: dict[int, int] = {}
    for model_id, raw in models:
        addresses.setdefault(model_id, base_address + len(regs))
        regs += build_model_registers(model_def(model_id), raw)
    regs += [0xFFFF, 0]
    return RegisterMap(base_address, tuple(m for m, _ in models), addresses, regs)


def encode_points(
    registers: list[int], start_address: int, model_address: int, mdef: ModelDef, raw: Mapping[str, Value]
) -> None:
    """Write raw point values into ``registers`` (whose first element is ``start_address``)."""
    for name, value in raw.items():
        pdef = mdef.points[name]
        at = model_address + pdef.offset - start_address
        registers[at : at + pdef.size] = encode_raw(pdef, value)


def decode_raw_points(
    registers: Sequence[int], start_address: int, model_address: int, mdef: ModelDef, names: Sequence[str]
) -> dict[str, Value]:
    """Raw (unscaled) values of some points, None where not implemented."""
    from drivers.sunspec.models import _decode_raw  # shared codec; private to the two packages

    out: dict[str, Value] = {}
    for name in names:
        pdef = mdef.points[name]
        at = model_address + pdef.offset - start_address
        out[name] = _decode_raw(pdef, registers[at : at + pdef.size])
    return out


def writable_span(mdef: ModelDef, model_address: int, address: int, count: int) -> bool:
    """True when every register in ``[address, address+count)`` belongs to a writable point."""
    for reg in range(address, address + count):
        offset = reg - model_address
        if not any(p.writable and p.offset <= offset < p.offset + p.size for p in mdef.points.values()):
            return False
    return True


def static_points(model_id: int, identity: Identity, ratings: Mapping[str, float]) -> dict[str, Value]:
    """Initial raw values of static points (identity, nameplate, scale factors) of a model.

    ``ratings`` holds ``rated_w``, ``capacity_wh``, ``max_charge_w``, ``max_discharge_w``.
    """
    rated_w = ratings.get("rated_w", 5000.0)
    w_sf = scale_factor_for(rated_w * 1.5, signed=True)
    wh_sf = scale_factor_for(ratings.get("capacity_wh", 10000.0), signed=False)
    if model_id == 1:
        return {"Mn": identity.manufacturer, "Md": identity.model, "SN": identity.serial,
                "Vr": identity.version, "DA": 1}
    if model_id in (101, 102, 103):
        return {"A_SF": -2, "V_SF": -1, "W_SF": w_sf, "Hz_SF": -2, "VA_SF": w_sf, "VAr_SF": w_sf,
                "PF_SF": -2, "WH_SF": 0, "Tmp_SF": -1, "TmpCab": 350, "Evt1": 0, "Evt2": 0}
    if model_id == 120:
        return {"DERTyp": 82 if "capacity_wh" in ratings else 4, "WRtg": round(rated_w / 10**w_sf),
                "WRtg_SF": w_sf, "VARtg": round(rated_w / 10**w_sf), "VARtg_SF": w_sf,
                "WHRtg": round(ratings.get("capacity_wh", 0) / 10**wh_sf) or None, "WHRtg_SF": wh_sf,
                "MaxChaRte": round(ratings.get("max_charge_w", 0) / 10**w_sf) or None, "MaxChaRte_SF": w_sf,
                "MaxDisChaRte": round(ratings.get("max_discharge_w", 0) / 10**w_sf) or None,
                "MaxDisChaRte_SF": w_sf}
    if model_id == 123:
        return {"Conn": 1, "WMaxLimPct": 1000, "WMaxLimPct_SF": -1, "WMaxLim_Ena": 0, "WMaxLimPct_RvrtTms": 0,
                "OutPFSet": 100, "OutPFSet_SF": -2, "OutPFSet_Ena": 0, "VArPct_Ena": 0, "VArPct_SF": -1}
    if model_id == 124:
        return {"WChaMax": round(ratings.get("max_charge_w", rated_w) / 10**w_sf), "WChaMax_SF": w_sf,
                "WChaGra": 100, "WDisChaGra": 100, "WChaDisChaGra_SF": 0, "StorCtl_Mod": 0,
                "ChaState_SF": -1, "InOutWRte_SF": -1, "OutWRte": 0, "InWRte": 0, "InOutWRte_RvrtTms": 0,
                "InOutWRte_WinTms": 0, "MinRsvPct_SF": 0}
    if model_id == 701:
        return {"ACType": 0, "St": 1, "InvSt": 3, "ConnSt": 1, "Alrm": 0, "DERMode": 1, "W_SF": w_sf,
                "VA_SF": w_sf, "Var_SF": w_sf, "PF_SF": -2, "A_SF": -2, "V_SF": -1, "Hz_SF": -2,
                "TotWh_SF": 0, "TotVarh_SF": 0, "Tmp_SF": -1}
    if model_id == 704:
        return {"WMaxLimPctEna": 0, "WMaxLimPct": 1000, "WMaxLimPctRvrtTms": 0, "WMaxLimPctEnaRvrt": 0,
                "WSetEna": 0, "WSetMod": 1, "WSet": 0, "WSetRvrtTms": 0, "WSetEnaRvrt": 0, "PF_SF": -2,
                "WMaxLimPct_SF": -1, "WSet_SF": 0, "WSetPct_SF": -1, "VarSet_SF": 0, "VarSetPct_SF": -1}
    if model_id == 713:
        return {"WHRtg": round(ratings.get("capacity_wh", 0) / 10**wh_sf), "WH_SF": wh_sf, "Pct_SF": -1, "Sta": 0}
    if model_id == 802:
        return {"AHRtg": round(ratings.get("capacity_wh", 0) / 200.0), "AHRtg_SF": 0,
                "WHRtg": round(ratings.get("capacity_wh", 0) / 10**wh_sf), "WHRtg_SF": wh_sf,
                "WChaRteMax": round(ratings.get("max_charge_w", 0) / 10**w_sf),
                "WDisChaRteMax": round(ratings.get("max_discharge_w", 0) / 10**w_sf),
                "WChaDisChaMax_SF": w_sf, "SoC_SF": -1, "DoD_SF": -1, "SoH_SF": -1, "SoH": 980,
                "LocRemCtl": 0, "Hb": 0, "CtrlHb": 0, "AlmRst": 0, "Typ": 4, "State": 3,
                "Evt1": 0, "Evt2": 0, "EvtVnd1": 0, "EvtVnd2": 0, "V_SF": -1, "V": 2020, "CellV_SF": -3,
                "A_SF": -1, "AMax_SF": 0, "W_SF": w_sf, "SetOp": 1, "SetInvState": 3}
    if model_id in (201, 202, 203, 204):
        return {"A_SF": -2, "V_SF": -1, "Hz_SF": -2, "W_SF": w_sf, "VA_SF": w_sf, "VAR_SF": w_sf,
                "PF_SF": -2, "TotWh_SF": 0, "TotVAh_SF": 0, "TotVArh_SF": 0, "Evt": 0}
    return {}
