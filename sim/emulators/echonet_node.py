"""A generic ECHONET Lite node on UDP (loopback emulator) with fault knobs.

A node hosts a node profile (0x0EF001, generated) and device objects whose properties are
getter/setter callables. It answers Get, SetC, SetI, SetGet and INF_REQ with Get_Res, Set_Res,
SetGet_Res, INF or the matching SNA; property maps (0x9D/0x9E/0x9F) and the instance lists
(0xD3/0xD6/0xD7) are generated from what the objects implement.

Fault knobs (:class:`NodeFaults`, settable at run time): ``no_reply``, ``get_sna`` (EPCs
refused), ``wrong_sign`` (the objects' signed power EPCs negated), ``delay_s``,
``reply_port`` (answers only to that port, e.g. 3610); and
:meth:`EchonetNode.reboot` (every object back to its power-on defaults, the node silent for
``silent_s``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from drivers.echonet.frame import CONTROLLER, NODE_PROFILE, Eoj, Esv, Frame, FrameError, Property, decode, encode
from drivers.echonet.knowledge import encode_instance_list, encode_property_map

log = logging.getLogger(__name__)

Getter = Callable[[], bytes]
#: A setter returns False to refuse the value (the node answers SNA for that EPC).
Setter = Callable[[bytes], bool]

_MAP_EPCS = (0x9D, 0x9E, 0x9F)


@dataclass
class EmulatedProperty:
    """One property: how to read it, how to write it, and whether it is announced."""

    getter: Getter | None = None
    setter: Setter | None = None
    announce: bool = False


@dataclass
class EmulatedObject:
    """A device object on the node.

    Attributes
    ----------
    eoj : Eoj
    properties : dict of int to EmulatedProperty
        By EPC; the property maps are added by the node.
    signed_power_epcs : frozenset of int
        Signed EPCs the ``wrong_sign`` fault negates (battery 0xD3, meter 0xE7).
    on_reboot : callable or None
        Puts the object back to its power-on defaults.
    """

    eoj: Eoj
    properties: dict[int, EmulatedProperty]
    signed_power_epcs: frozenset[int] = frozenset()
    on_reboot: Callable[[], None] | None = None

    def maps(self) -> dict[int, bytes]:
        """The generated property maps 0x9D (inf), 0x9E (set), 0x9F (get)."""
        props = self.properties
        get_map = {e for e, p in props.items() if p.getter} | set(_MAP_EPCS)
        return {
            0x9D: encode_property_map({e for e, p in props.items() if p.announce}),
            0x9E: encode_property_map({e for e, p in props.items() if p.setter}),
            0x9F: encode_property_map(get_map),
        }


@dataclass
class NodeFaults:
    """Fault knobs of a node, changed at run time by tests and ``gridctl emulate``.

    Attributes
    ----------
    no_reply : bool
        Drop every request silently.
    get_sna : set of int
        EPCs refused (answered with PDC 0 in a Get_SNA / with the value in a SetC_SNA).
    wrong_sign : bool
        Negate the signed power EPCs of every object (a device with the wrong sign).
    delay_s : float
        Answer after this delay [s].
    reply_port : int or None
        Send answers to this port instead of the requester's (devices that answer only to
        3610: the ``replies_to_3610`` quirk).
    """

    no_reply: bool = False
    get_sna: set[int] = field(default_factory=set)
    wrong_sign: bool = False
    delay_s: float = 0.0
    reply_port: int | None = None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, node: EchonetNode) -> None:
        self._node = node

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._node._on_datagram(data, (addr[0], addr[1]))


class EchonetNode:
    """An ECHONET Lite node serving its objects on ``host:port`` (UDP).

    Parameters
    ----------
    host : str
        Address to bind (127.0.0.x on loopback).
    port : int
        UDP port (3610, or 0 for a free port; see :attr:`port` after :meth:`start`).
    objects : iterable of EmulatedObject
    maker_code : int
        Maker code (0x8A) of the node profile and of objects that give none [3 bytes].
    """

    def __init__(self, host: str, port: int, objects: Iterable[EmulatedObject],
                 maker_code: int = 0x000000) -> None:
        self.host = host
        self.requested_port = port
        self.objects: dict[Eoj, EmulatedObject] = {o.eoj: o for o in objects}
        self.maker_code = maker_code
        self.faults = NodeFaults()
        self.requests_seen = 0
        self.garbage_seen = 0
        self._silent_until = 0.0
        self._transport: asyncio.DatagramTransport | None = None
        self._profile = self._node_profile()

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound UDP port."""
        if self._transport is None:
            return self.requested_port
        return self._transport.get_extra_info("sockname")[1]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.requested_port))
        log.debug("echonet node up at=%s:%s objects=%s", self.host, self.port,
                  [str(e) for e in self.objects])

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> EchonetNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def reboot(self, silent_s: float = 0.0) -> None:
        """Power-cycle: every object back to its defaults; no answers for ``silent_s`` [s]."""
        for obj in self.objects.values():
            if obj.on_reboot is not None:
                obj.on_reboot()
        self._silent_until = asyncio.get_running_loop().time() + silent_s

    # ---- node profile ------------------------------------------------------------------------

    def _node_profile(self) -> EmulatedObject:
        eojs = tuple(self.objects)
        classes = sorted({e.class_code for e in eojs})
        const = lambda data: EmulatedProperty(getter=lambda: data)  # noqa: E731
        props = {
            0x80: const(b"\x30"),
            0x82: const(bytes((0x01, 0x0D, 0x01, 0x00))),
            0x83: const(b"\xFE" + self.maker_code.to_bytes(3, "big") + bytes(13)),
            0x8A: const(self.maker_code.to_bytes(3, "big")),
            0xD3: const(len(eojs).to_bytes(3, "big")),
            0xD4: const((len(classes) + 1).to_bytes(2, "big")),
            0xD5: EmulatedProperty(getter=None, announce=True),
            0xD6: const(encode_instance_list(eojs)),
            0xD7: const(bytes([len(classes)]) + b"".join(c.to_bytes(2, "big") for c in classes)),
        }
        return EmulatedObject(NODE_PROFILE, props)

    def _object(self, eoj: Eoj) -> EmulatedObject | None:
        if eoj.class_code == NODE_PROFILE.class_code and eoj.instance in (0, 1):
            return self._profile
        return self.objects.get(eoj)

    def _targets(self, deoj: Eoj) -> list[EmulatedObject]:
        if deoj.instance == 0:  # all instances of a class
            if deoj.class_code == NODE_PROFILE.class_code:
                return [self._profile]
            return [o for e, o in self.objects.items() if e.class_code == deoj.class_code]
        obj = self._object(deoj)
        return [obj] if obj is not None else []

    # ---- serving -----------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            frame = decode(data)
        except FrameError as exc:
            self.garbage_seen += 1
            log.debug("echonet node ignored datagram from=%s error=%s", addr, exc)
            return
        self.requests_seen += 1
        if self.faults.no_reply:
            return
        if asyncio.get_running_loop().time() < self._silent_until:
            return
        replies = [r for obj in self._targets(frame.deoj) if (r := self._answer(obj, frame))]
        for reply in replies:
            self._reply(encode(reply), addr)

    def _reply(self, payload: bytes, addr: tuple[str, int]) -> None:
        if self._transport is None:
            return
        if self.faults.reply_port is not None:
            addr = (addr[0], self.faults.reply_port)
        if self.faults.delay_s > 0:
            asyncio.get_running_loop().call_later(self.faults.delay_s, self._send, payload, addr)
        else:
            self._send(payload, addr)

    def _send(self, payload: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(payload, addr)

    def _answer(self, obj: EmulatedObject, frame: Frame) -> Frame | None:
        esv = frame.esv
        if esv == Esv.GET:
            props, ok = self._get_all(obj, frame.properties)
            return self._frame(obj, frame, Esv.GET_RES if ok else Esv.GET_SNA, props)
        if esv == Esv.INF_REQ:
            props, ok = self._get_all(obj, frame.properties)
            return self._frame(obj, frame, Esv.INF if ok else Esv.INF_SNA, props)
        if esv in (Esv.SETC, Esv.SETI):
            props, ok = self._set_all(obj, frame.properties)
            if esv == Esv.SETI:
                return None if ok else self._frame(obj, frame, Esv.SETI_SNA, props)
            return self._frame(obj, frame, Esv.SET_RES if ok else Esv.SETC_SNA, props)
        if esv == Esv.SETGET:
            set_props, set_ok = self._set_all(obj, frame.properties)
            get_props, get_ok = self._get_all(obj, frame.get_properties)
            ok = set_ok and get_ok
            return Frame(frame.tid, obj.eoj, frame.seoj, Esv.SETGET_RES if ok else Esv.SETGET_SNA,
                         set_props, get_props)
        return None  # answers and notifications addressed to a node need no reply

    @staticmethod
    def _frame(obj: EmulatedObject, request: Frame, esv: Esv,
               props: tuple[Property, ...]) -> Frame:
        return Frame(request.tid, obj.eoj, request.seoj, esv, props)

    def _get_all(self, obj: EmulatedObject,
                 wanted: tuple[Property, ...]) -> tuple[tuple[Property, ...], bool]:
        out = []
        for prop in wanted:
            edt = self._get_one(obj, prop.epc)
            out.append(Property(prop.epc, edt or b""))
        return tuple(out), all(p.edt for p in out)

    def _get_one(self, obj: EmulatedObject, epc: int) -> bytes | None:
        if epc in self.faults.get_sna:
            return None
        if epc in _MAP_EPCS:
            return obj.maps()[epc]
        prop = obj.properties.get(epc)
        if prop is None or prop.getter is None:
            return None
        edt = prop.getter()
        if self.faults.wrong_sign and epc in obj.signed_power_epcs:
            value = int.from_bytes(edt, "big", signed=True)
            edt = (-value).to_bytes(len(edt), "big", signed=True)
        return edt

    def _set_all(self, obj: EmulatedObject,
                 values: tuple[Property, ...]) -> tuple[tuple[Property, ...], bool]:
        out = []
        for prop in values:
            accepted = self._set_one(obj, prop)
            # Set_Res: PDC 0 for an accepted EPC; SNA: the refused value is echoed back.
            out.append(Property(prop.epc) if accepted else prop)
        return tuple(out), all(not p.edt for p in out)

    def _set_one(self, obj: EmulatedObject, prop: Property) -> bool:
        if prop.epc in self.faults.get_sna or not prop.edt:
            return False
        target = obj.properties.get(prop.epc)
        if target is None or target.setter is None:
            return False
        try:
            return bool(target.setter(prop.edt))
        except (ValueError, IndexError):
            return False

    # ---- notifications -----------------------------------------------------------------------

    def notify(self, eoj: Eoj, epcs: Iterable[int], to: tuple[str, int],
               values: Mapping[int, bytes] | None = None) -> None:
        """Send an INF of ``epcs`` of object ``eoj`` to ``to`` (unicast)."""
        obj = self._object(eoj)
        if obj is None or self._transport is None:
            return
        given = values or {}
        props = tuple(Property(e, given.get(e) or self._get_one(obj, e) or b"") for e in epcs)
        frame = Frame(0, obj.eoj, CONTROLLER, Esv.INF, props)
        self._send(encode(frame), to)
