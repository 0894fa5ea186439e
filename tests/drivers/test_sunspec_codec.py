"""SunSpec model definitions and register codec (pure, no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from drivers.sunspec.models import (
    build_model_registers,
    decode_model,
    encode_raw,
    model_def,
    scale_factor_of,
    to_raw,
)

# Model lengths L (registers after ID and L) as published in the SunSpec information models.
PUBLISHED_LENGTHS = {1: 66, 101: 50, 102: 50, 103: 50, 120: 26, 123: 24, 124: 24, 701: 153, 704: 65,
                     713: 7, 802: 62, 201: 105, 202: 105, 203: 105, 204: 105}


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_LENGTHS))
def test_model_length_matches_published_length(model_id: int) -> None:
    mdef = model_def(model_id)
    assert mdef.points["ID"].offset == 0 and mdef.points["L"].offset == 1
    assert mdef.full_length - 2 == PUBLISHED_LENGTHS[model_id]


def test_common_model_layout_is_the_standard_one() -> None:
    mdef = model_def(1)
    assert mdef.full_length == 68  # ID, L and 66 registers
    assert mdef.points["SN"].offset == 2 + 16 + 16 + 8 + 8 and mdef.points["SN"].size == 16


def test_decode_applies_scale_factors_and_drops_not_implemented() -> None:
    mdef = model_def(103)
    regs = build_model_registers(mdef, {"W": 1234, "W_SF": -1, "Hz": 5002, "Hz_SF": -2, "WH": 98765, "WH_SF": 1})
    values, notes = decode_model(mdef, regs)
    assert values["W"] == pytest.approx(123.4)
    assert values["Hz"] == pytest.approx(50.02)
    assert values["WH"] == pytest.approx(987650.0)
    assert values["VA"] is None  # never set: 0x8000 sentinel, not -32768
    assert values["PhVphA"] is None  # uint16 0xFFFF sentinel
    assert notes == []


def test_value_with_unimplemented_scale_factor_is_dropped() -> None:
    mdef = model_def(103)
    regs = build_model_registers(mdef, {"W": 1234})  # W_SF left not implemented
    values, _ = decode_model(mdef, regs)
    assert values["W"] is None


def test_garbage_scale_factor_is_dropped_with_a_note() -> None:
    mdef = model_def(802)
    regs = build_model_registers(mdef, {"SoC": 500, "SoC_SF": 42})
    values, notes = decode_model(mdef, regs)
    assert values["SoC"] is None
    assert any("SoC" in note and "42" in note for note in notes)


def test_accumulator_zero_means_not_implemented() -> None:
    mdef = model_def(203)
    regs = build_model_registers(mdef, {"TotWhImp": 0, "TotWhExp": 7, "TotWh_SF": 0})
    values, _ = decode_model(mdef, regs)
    assert values["TotWhImp"] is None
    assert values["TotWhExp"] == 7


def test_strings_decode_and_blank_is_none() -> None:
    mdef = model_def(1)
    values, _ = decode_model(mdef, build_model_registers(mdef, {"Mn": "Acme", "SN": "SN-42"}))
    assert values["Mn"] == "Acme" and values["SN"] == "SN-42" and values["Md"] is None


def test_encode_signed_and_range_checks() -> None:
    pdef = model_def(704).points["WSet"]
    assert encode_raw(pdef, -2000) == [0xFFFF, 0xF830]
    with pytest.raises(ValueError):
        encode_raw(model_def(124).points["WChaMax"], 70000)


def test_scale_factor_lookup_and_unscaling() -> None:
    mdef = model_def(123)
    assert scale_factor_of(mdef, "WMaxLimPct", {"WMaxLimPct_SF": -1}) == -1
    assert to_raw(22.22, -1) == 222
    assert scale_factor_of(mdef, "Conn", {}) is None


def test_decode_short_block_leaves_missing_points_none() -> None:
    mdef = model_def(701)
    values, _ = decode_model(mdef, [701, 153, 0, 1])
    assert values["ACType"] == 0 and values["St"] == 1 and values["W"] is None

_RANGES = {"int16": (-32767, 32767), "uint16": (0, 0xFFFE), "int32": (-(2**31) + 1, 2**31 - 1),
           "uint32": (0, 2**32 - 2), "acc32": (1, 2**32 - 1), "uint64": (0, 2**64 - 2)}
_POINTS = [(701, "W"), (701, "LLV"), (704, "WSet"), (704, "WSetRvrtTms"), (203, "TotWhImp"), (701, "TotWhInj")]


@given(st.sampled_from(_POINTS), st.data(), st.integers(-3, 3))
def test_encode_decode_round_trip(point, data, sf) -> None:
    model_id, name = point
    mdef = model_def(model_id)
    pdef = mdef.points[name]
    low, high = _RANGES[pdef.type]
    raw = data.draw(st.integers(low, high))
    values = {name: raw}
    if isinstance(pdef.sf, str):
        values[pdef.sf] = sf
    decoded, notes = decode_model(mdef, build_model_registers(mdef, values), [name])
    expected = raw * 10.0**sf if isinstance(pdef.sf, str) else raw
    assert decoded[name] == pytest.approx(expected, rel=1e-9) and notes == []
