"""ECHONET Lite frame codec and class knowledge: a real device's reply, round trips, garbage."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from drivers.echonet.frame import (
    CONTROLLER,
    Eoj,
    Esv,
    Frame,
    FrameError,
    Property,
    decode,
    encode,
)
from drivers.echonet.knowledge import (
    KnowledgeError,
    decode_property_map,
    decode_value,
    encode_property_map,
    encode_value,
    epc_spec,
    load_classes,
)

#: A storage battery's Get_Res as logged by Home Assistant's echonetlite integration
#: (raw bytes in the debug log), from
#: https://github.com/scottyphillips/echonetlite_homeassistant/issues/148
REAL_BATTERY_GET_RES = bytes.fromhex(
    "1081 0046 027D02 05FF01 72 0A"
    " 80 01 30"
    " A0 04 00002710"
    " A1 04 00002710"
    " A2 04 00000000"
    " A3 04 00000000"
    " D3 04 00000000"
    " A4 04 00000000"
    " E4 01 09"
    " A5 04 00000000"
    " E6 01 04"
)


def test_real_battery_get_res_decodes_through_the_class_knowledge():
    """The battery answer from echonetlite_homeassistant#148 (see REAL_BATTERY_GET_RES):
    header fields and every property value, each decoded through classes.yaml."""
    frame = decode(REAL_BATTERY_GET_RES)
    assert frame.tid == 0x46
    assert frame.seoj == Eoj(0x02, 0x7D, 0x02) and frame.seoj.class_code == 0x027D
    assert frame.deoj == CONTROLLER
    assert frame.esv == Esv.GET_RES
    values = {p.epc: decode_value(0x027D, p.epc, p.edt) for p in frame.properties}
    assert values == {
        0x80: "on",
        0xA0: 10000,  # AC effective capacity (charging) [Wh]
        0xA1: 10000,  # AC effective capacity (discharging) [Wh]
        0xA2: 0,
        0xA3: 0,
        0xD3: 0,  # charging/discharging power [W]
        0xA4: 0,
        0xE4: 9,  # remaining [%]
        0xA5: 0,
        0xE6: "lithium_ion",
    }
    assert epc_spec(0x027D, 0xE4).unit == "%"
    assert epc_spec(0x027D, 0xD3).sign == "charging_positive"
    assert encode(frame) == REAL_BATTERY_GET_RES


def test_setget_frames_carry_two_property_lists():
    frame = Frame(7, CONTROLLER, Eoj.of(0x027D, 1), Esv.SETGET,
                  (Property(0xDA, b"\x42"), Property(0xEB, b"\x00\x00\x03\xe8")),
                  (Property(0xDA), Property(0xE4)))
    data = encode(frame)
    assert data[11] == 2 and data.endswith(bytes((2, 0xDA, 0, 0xE4, 0)))
    assert decode(data) == frame
    with pytest.raises(FrameError, match="no second property list"):
        Frame(1, CONTROLLER, CONTROLLER, Esv.GET, (), (Property(0x80),))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 12-byte header"),
        (bytes.fromhex("1081000105FF01027D0162"), "shorter than the 12-byte header"),
        (bytes.fromhex("1082000105FF01027D016201 8000"), "EHD 10 82"),
        (bytes.fromhex("1081000105FF01027D019901 8000"), "unknown ESV 0x99"),
        (bytes.fromhex("1081000105FF01027D016202 8000"), "OPC=2 but the frame ends"),
        (bytes.fromhex("1081000105FF01027D017201 800230"), "PDC=2 overruns"),
        (bytes.fromhex("1081000105FF01027D016201 8000 FF"), "1 trailing bytes"),
        (bytes.fromhex("1081000105FF01027D016E01 800130"), "ends before its OPCGet"),
    ],
)
def test_garbage_is_one_clear_frame_error(data, message):
    with pytest.raises(FrameError, match=message) as info:
        decode(data)
    assert "\n" not in str(info.value)


def test_random_bytes_never_raise_anything_but_frame_error():
    rng = random.Random(12)
    valid = encode(Frame(1, CONTROLLER, Eoj.of(0x0288, 1), Esv.GET,
                         (Property(0xE7), Property(0xEA))))
    for _ in range(3000):
        size = rng.randrange(0, 40)
        data = bytes(rng.randrange(256) for _ in range(size))
        if rng.random() < 0.5:  # a valid header with random tails: reaches the list parser
            data = valid[:12] + data
        try:
            frame = decode(data)
        except FrameError:
            continue
        assert encode(frame) == data


def test_eoj_class_code_is_16_bit_either_way():
    assert Eoj(0x02, 0x7D, 1) == Eoj(0x02, 0x027D, 1) == Eoj.of(0x027D, 1)
    assert Eoj.of(0x0288, 1).to_bytes() == bytes.fromhex("028801")
    assert Eoj.from_bytes(bytes.fromhex("0EF001")).class_code == 0x0EF0
    with pytest.raises(FrameError):
        Eoj(0x02, 0x0388, 1)


def test_property_maps_round_trip_in_both_formats():
    short = {0x80, 0x8A, 0x9F}
    assert encode_property_map(short) == bytes((3, 0x80, 0x8A, 0x9F))
    long = set(range(0x80, 0x80 + 20)) | {0xE7, 0xEA, 0xFF}
    data = encode_property_map(long)
    assert len(data) == 17 and data[0] == 23
    assert decode_property_map(data) == long
    assert decode_property_map(encode_property_map(short)) == short
    with pytest.raises(KnowledgeError):
        decode_property_map(bytes((20, 1, 2)))


def test_every_epc_in_the_knowledge_round_trips():
    samples = {
        "unsigned": lambda s: (s.maximum or (1 << (8 * s.size - 1)) - 3) * s.scale,
        "signed": lambda s: -1234,
        "enum": lambda s: s.values[-1][1],
        "ascii": lambda s: "GRIDCTL",
        "raw": lambda s: bytes(range(s.size or 3)),
        "bitmap": lambda s: 0x5,
        "property_map": lambda s: frozenset({0x80, 0x9F}),
        "instance_list": lambda s: (Eoj.of(0x027D, 1), Eoj.of(0x0279, 2)),
        "class_list": lambda s: (0x027D, 0x0288),
        "composite": None,
    }
    checked = 0
    for spec in load_classes().values():
        for prop in spec.properties:
            if prop.type == "composite":
                value = tuple(
                    datetime(2026, 11, 29, 12, 30) if p.type == "date_time"
                    else (tuple(range(p.repeat)) if p.repeat > 1 else 4242)
                    for p in prop.parts)
            else:
                value = samples[prop.type](prop)
            edt = encode_value(spec.class_code, prop.epc, value)
            assert not prop.size or len(edt) == prop.size, (spec.name, prop.name)
            back = decode_value(spec.class_code, prop.epc, edt)
            if isinstance(value, float):
                assert back == pytest.approx(value), (spec.name, prop.name)
            elif prop.type == "ascii":
                assert back == value
            else:
                assert back == value, (spec.name, prop.name)
            checked += 1
    assert checked > 50


def test_knowledge_signs_units_and_no_data():
    assert decode_value(0x027D, 0xD3, (-1500).to_bytes(4, "big", signed=True)) == -1500
    assert decode_value(0x0288, 0xE7, bytes.fromhex("7FFFFFFE")) is None
    assert decode_value(0x0288, 0xE1, b"\x01") == 0.1
    assert decode_value(0x0279, 0xE1, (12345).to_bytes(4, "big")) == pytest.approx(12.345)
    fixed = decode_value(0x0288, 0xEA, bytes.fromhex("07EA0B1D0C1E00 000004D2"))
    assert fixed == (datetime(2026, 11, 29, 12, 30, 0), 1234)
    assert decode_value(0x05FD, 0x80, b"\x31") == "off"  # from the super class
    with pytest.raises(KnowledgeError, match="0x027D EPC 0xE4 .*2 bytes, expected 1"):
        decode_value(0x027D, 0xE4, b"\x00\x09")
    with pytest.raises(KnowledgeError, match="0x05F5E100 |100000000 above the specified maximum"):
        decode_value(0x0288, 0xE0, (100_000_000).to_bytes(4, "big"))
    with pytest.raises(KnowledgeError, match="no known EPC 0x01"):
        decode_value(0x027D, 0x01, b"\x00")
    with pytest.raises(KnowledgeError, match="code 0x99 is not one of"):
        decode_value(0x027D, 0xDA, b"\x99")
