"""ECHONET Lite frame codec (pure: bytes in, values out).

Format 1 frames only (the specified message format)::

    EHD1=0x10 EHD2=0x81 | TID(2) | SEOJ(3) | DEOJ(3) | ESV | OPC | {EPC PDC EDT} x OPC

SetGet (0x6E) and its answers (0x7E, 0x5E) carry two property lists, OPCSet then OPCGet:
:attr:`Frame.properties` holds the first, :attr:`Frame.get_properties` the second.
Errors are :class:`FrameError` (a ``ValueError``) with one line naming what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

EHD1 = 0x10
EHD2_FORMAT1 = 0x81
HEADER_BYTES = 12  # EHD(2) TID(2) SEOJ(3) DEOJ(3) ESV(1) OPC(1)


class Esv(IntEnum):
    """ECHONET Lite service codes."""

    SETI = 0x60
    SETC = 0x61
    GET = 0x62
    INF_REQ = 0x63
    SETGET = 0x6E
    SET_RES = 0x71
    GET_RES = 0x72
    INF = 0x73
    INFC = 0x74
    INFC_RES = 0x7A
    SETGET_RES = 0x7E
    SETI_SNA = 0x50
    SETC_SNA = 0x51
    GET_SNA = 0x52
    INF_SNA = 0x53
    SETGET_SNA = 0x5E


#: Services whose frame carries two property lists (OPCSet, OPCGet).
TWO_LIST_ESVS = frozenset({Esv.SETGET, Esv.SETGET_RES, Esv.SETGET_SNA})
#: "Service not available" answers: the device refused (some of) the request.
SNA_ESVS = frozenset({Esv.SETI_SNA, Esv.SETC_SNA, Esv.GET_SNA, Esv.INF_SNA, Esv.SETGET_SNA})


class FrameError(ValueError):
    """A byte string that is not a well-formed ECHONET Lite format-1 frame."""


@dataclass(frozen=True)
class Eoj:
    """An ECHONET object: class group, class and instance code.

    ``class_code`` may be given as the one-byte class code (``Eoj(0x02, 0x7D, 1)``) or as
    the 16-bit group+class (``Eoj(0x02, 0x027D, 1)``); it is stored and read back as the
    16-bit code (``0x027D``), the key of the class knowledge.
    """

    class_group: int
    class_code: int
    instance: int

    def __post_init__(self) -> None:
        if not 0 <= self.class_group <= 0xFF or not 0 <= self.instance <= 0xFF:
            raise FrameError(f"EOJ out of range: group {self.class_group}, "
                             f"instance {self.instance}")
        code = self.class_code
        if 0 <= code <= 0xFF:
            code = (self.class_group << 8) | code
        elif code >> 8 != self.class_group or code > 0xFFFF:
            raise FrameError(f"EOJ class code 0x{code:04X} is not in group 0x{self.class_group:02X}")
        object.__setattr__(self, "class_code", code)

    @classmethod
    def of(cls, class_code: int, instance: int = 1) -> Eoj:
        """The object ``class_code`` (16-bit, e.g. ``0x027D``) instance ``instance``."""
        return cls(class_code >> 8, class_code, instance)

    @classmethod
    def from_bytes(cls, data: bytes) -> Eoj:
        """Decode 3 bytes."""
        if len(data) != 3:
            raise FrameError(f"an EOJ is 3 bytes, got {len(data)}")
        return cls(data[0], data[0] << 8 | data[1], data[2])

    def to_bytes(self) -> bytes:
        """Encode as 3 bytes."""
        return bytes((self.class_group, self.class_code & 0xFF, self.instance))

    def __str__(self) -> str:
        return f"0x{self.class_code:04X}{self.instance:02X}"


#: The node profile object of every node (discovery: EPC 0xD6 lists its instances).
NODE_PROFILE = Eoj.of(0x0EF0, 1)
#: A controller (gridctl's own SEOJ).
CONTROLLER = Eoj.of(0x05FF, 1)


@dataclass(frozen=True)
class Property:
    """One property in a frame: EPC and its data (empty EDT in a Get or a refusal)."""

    epc: int
    edt: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.epc <= 0xFF:
            raise FrameError(f"EPC {self.epc} is not a byte")
        if len(self.edt) > 0xFF:
            raise FrameError(f"EPC 0x{self.epc:02X}: EDT of {len(self.edt)} bytes exceeds 255")


@dataclass(frozen=True)
class Frame:
    """One ECHONET Lite format-1 message.

    Attributes
    ----------
    tid : int
        Transaction id, 0-65535; an answer carries the request's.
    seoj, deoj : Eoj
        Source and destination objects.
    esv : int
        Service code (:class:`Esv`).
    properties : tuple of Property
        The property list (for SetGet services: the OPCSet list).
    get_properties : tuple of Property
        The OPCGet list of SetGet services; empty otherwise.
    """

    tid: int
    seoj: Eoj
    deoj: Eoj
    esv: int
    properties: tuple[Property, ...] = ()
    get_properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.tid <= 0xFFFF:
            raise FrameError(f"TID {self.tid} is not 16-bit")
        if self.esv not in Esv._value2member_map_:
            raise FrameError(f"unknown ESV 0x{self.esv:02X}")
        if self.get_properties and self.esv not in TWO_LIST_ESVS:
            raise FrameError(f"ESV 0x{self.esv:02X} has no second property list")
        if len(self.properties) > 0xFF or len(self.get_properties) > 0xFF:
            raise FrameError("more than 255 properties in one list")

    def edt(self, epc: int) -> bytes | None:
        """EDT of ``epc`` in the (first) property list, None when absent."""
        for prop in self.properties:
            if prop.epc == epc:
                return prop.edt
        return None


def encode(frame: Frame) -> bytes:
    """Encode a frame to bytes."""
    out = bytearray((EHD1, EHD2_FORMAT1))
    out += frame.tid.to_bytes(2, "big")
    out += frame.seoj.to_bytes() + frame.deoj.to_bytes()
    out.append(frame.esv)
    out += _encode_list(frame.properties)
    if frame.esv in TWO_LIST_ESVS:
        out += _encode_list(frame.get_properties)
    return bytes(out)


def _encode_list(props: tuple[Property, ...]) -> bytes:
    out = bytearray((len(props),))
    for prop in props:
        out += bytes((prop.epc, len(prop.edt))) + prop.edt
    return bytes(out)


def decode(data: bytes) -> Frame:
    """Decode bytes to a frame; raise :class:`FrameError` naming the first defect."""
    if len(data) < HEADER_BYTES:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the "
                         f"{HEADER_BYTES}-byte header")
    if data[0] != EHD1 or data[1] != EHD2_FORMAT1:
        raise FrameError(f"not an ECHONET Lite format-1 frame: EHD {data[0]:02X} {data[1]:02X}")
    esv = data[10]
    if esv not in Esv._value2member_map_:
        raise FrameError(f"unknown ESV 0x{esv:02X}")
    props, pos = _decode_list(data, 11, "OPC")
    get_props: tuple[Property, ...] = ()
    if esv in TWO_LIST_ESVS:
        if pos >= len(data):
            raise FrameError(f"ESV 0x{esv:02X} frame ends before its OPCGet byte")
        get_props, pos = _decode_list(data, pos, "OPCGet")
    if pos != len(data):
        raise FrameError(f"{len(data) - pos} trailing bytes after the last property")
    return Frame(
        tid=int.from_bytes(data[2:4], "big"),
        seoj=Eoj.from_bytes(data[4:7]),
        deoj=Eoj.from_bytes(data[7:10]),
        esv=esv,
        properties=props,
        get_properties=get_props,
    )


def _decode_list(data: bytes, pos: int, what: str) -> tuple[tuple[Property, ...], int]:
    count = data[pos]
    pos += 1
    props = []
    for index in range(count):
        if pos + 2 > len(data):
            raise FrameError(f"{what}={count} but the frame ends at property {index + 1}")
        epc, pdc = data[pos], data[pos + 1]
        pos += 2
        if pos + pdc > len(data):
            raise FrameError(f"EPC 0x{epc:02X}: PDC={pdc} overruns the frame "
                             f"({len(data) - pos} bytes left)")
        props.append(Property(epc, bytes(data[pos:pos + pdc])))
        pos += pdc
    return tuple(props), pos
