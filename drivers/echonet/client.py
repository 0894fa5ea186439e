"""An asyncio ECHONET Lite client: one UDP socket, TID correlation, timeouts and retries.

Unicast by default: ``get``/``set``/``set_get`` address one node. ``discover`` asks node
profiles (0x0EF001) for their instance lists, by multicast to 224.0.23.0 and/or by unicast to
listed hosts ("force polling": works where IGMP snooping or VLANs drop multicast).

A reply is accepted only when its TID, source host and SEOJ match an open request; anything
else (wrong TID, another host, garbage bytes) is counted and ignored, never raised. INF/INFC
notifications go to the ``on_notification`` callback (INFC is acknowledged with INFC_Res).

Sharing: one client may serve every ECHONET driver of a daemon (pass it to each driver's
constructor; the owner opens and closes it). A driver given no client opens its own.
"""

from __future__ import annotations

import asyncio
import weakref
import logging
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from drivers import errors
from drivers.echonet.frame import (
    CONTROLLER,
    NODE_PROFILE,
    SNA_ESVS,
    Eoj,
    Esv,
    Frame,
    FrameError,
    Property,
    decode,
    encode,
)
from drivers.echonet.knowledge import KnowledgeError, decode_instance_list, decode_property_map
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import ECHONET_PORT

log = logging.getLogger(__name__)

MULTICAST_GROUP = "224.0.23.0"
#: Reason key: the device answered SNA for a required property.
PROPERTY_REFUSED = "property_refused"


class GetResult(dict[int, bytes]):
    """EDT per EPC a device answered; ``refused`` names the EPCs it refused (Get_SNA)."""

    def __init__(self, values: Mapping[int, bytes], refused: Iterable[int] = ()) -> None:
        super().__init__(values)
        self.refused: tuple[int, ...] = tuple(refused)


@dataclass(frozen=True)
class Notification:
    """An INF/INFC a node sent (unsolicited, or in answer to INF_REQ without a waiter)."""

    host: str
    port: int
    frame: Frame


@dataclass(frozen=True)
class DiscoveredObject:
    """One object of a discovered node with its maker code and property maps (EPC sets)."""

    eoj: Eoj
    maker_code: int | None
    get_map: frozenset[int]
    set_map: frozenset[int]
    inf_map: frozenset[int]


@dataclass(frozen=True)
class DiscoveredNode:
    """A node that answered discovery."""

    host: str
    port: int
    maker_code: int | None
    objects: tuple[DiscoveredObject, ...]


@dataclass
class _Pending:
    host: str | None  # None: collect answers from any host (discovery)
    deoj: Eoj
    future: asyncio.Future[Frame] | None
    collected: list[tuple[str, int, Frame]]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: EchonetClient) -> None:
        self._client = client

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self._client._on_datagram(data, addr[0], addr[1])

    def error_received(self, exc: Exception) -> None:
        log.debug("echonet socket error=%s", exc)


class EchonetClient:
    """ECHONET Lite controller side over UDP.

    Parameters
    ----------
    local_host : str
        Address to bind ("0.0.0.0": all).
    local_port : int
        Port to bind: 0 = ephemeral (default); 3610 for devices with the ``replies_to_3610``
        quirk (only one process per address can then bind it).
    timeout_s : float
        Per-attempt timeout [s] when a call gives none.
    retries : int
        Extra attempts after a timeout when a call gives none.
    backoff_s : float
        First retry delay [s], doubled per attempt.
    on_notification : callable or None
        Called with each :class:`Notification` received.
    seoj : Eoj
        gridctl's own object (a controller, 0x05FF01).
    """

    def __init__(
        self,
        local_host: str = "0.0.0.0",
        local_port: int = 0,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        on_notification: Callable[[Notification], None] | None = None,
        seoj: Eoj = CONTROLLER,
    ) -> None:
        self.local_host = local_host
        self.requested_port = local_port
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_notification = on_notification
        self.seoj = seoj
        self.ignored_datagrams = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: dict[int, _Pending] = {}
        self._next_tid = 1

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._transport is not None

    @property
    def local_port(self) -> int:
        """The bound port (after :meth:`open`)."""
        if self._transport is None:
            return self.requested_port
        return self._transport.get_extra_info("sockname")[1]

    async def open(self) -> None:
        """Bind the socket; PermanentDeviceError when the port cannot be bound."""
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.bind((self.local_host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise PermanentDeviceError(
                f"{self.local_host}:{self.requested_port}", errors.BAD_CONFIGURATION,
                f"cannot bind the ECHONET Lite client socket: {exc.strerror or exc}") from None
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), sock=sock)

    async def close(self) -> None:
        """Close the socket and fail open requests; never raises."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        for pending in self._pending.values():
            if pending.future is not None and not pending.future.done():
                pending.future.cancel()
        self._pending.clear()

    async def __aenter__(self) -> EchonetClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- receiving ---------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, host: str, port: int) -> None:
        try:
            frame = decode(data)
        except FrameError as exc:
            self.ignored_datagrams += 1
            log.debug("echonet ignored datagram from=%s:%s error=%s", host, port, exc)
            return
        pending = self._pending.get(frame.tid)
        if pending is not None and self._matches(pending, host, frame):
            if pending.future is None:
                pending.collected.append((host, port, frame))
            elif not pending.future.done():
                pending.future.set_result(frame)
            return
        if frame.esv in (Esv.INF, Esv.INFC):
            self._notify(host, port, frame)
            return
        self.ignored_datagrams += 1
        log.debug("echonet ignored unmatched frame from=%s tid=%s esv=0x%02X",
                  host, frame.tid, frame.esv)

    @staticmethod
    def _matches(pending: _Pending, host: str, frame: Frame) -> bool:
        if frame.esv < 0x70 and frame.esv not in SNA_ESVS:
            return False  # a request, not an answer
        if pending.host is not None and host != pending.host:
            return False
        return frame.seoj == pending.deoj or (
            pending.future is None and frame.seoj.class_code == pending.deoj.class_code)

    def _notify(self, host: str, port: int, frame: Frame) -> None:
        if frame.esv == Esv.INFC and self._transport is not None:
            ack = Frame(frame.tid, frame.deoj, frame.seoj, Esv.INFC_RES,
                        tuple(Property(p.epc) for p in frame.properties))
            self._transport.sendto(encode(ack), (host, port))
        if self.on_notification is not None:
            try:
                self.on_notification(Notification(host, port, frame))
            except Exception:  # a faulty callback must not stop the client
                log.exception("echonet notification callback failed")

    # ---- requests ----------------------------------------------------------------------------

    def _allocate_tid(self) -> int:
        for _ in range(0x10000):
            tid = self._next_tid
            self._next_tid = tid % 0xFFFF + 1
            if tid not in self._pending:
                return tid
        raise TransientDeviceError("echonet", errors.BUSY, "all 65535 TIDs are in use")

    def _send(self, frame: Frame, host: str, port: int) -> None:
        if self._transport is None:
            raise PermanentDeviceError(f"{host}:{port}", errors.BAD_CONFIGURATION,
                                       "the ECHONET Lite client is not open")
        self._transport.sendto(encode(frame), (host, port))

    async def _request(self, host: str, port: int, deoj: Eoj, esv: Esv,
                       props: tuple[Property, ...], get_props: tuple[Property, ...] = (),
                       timeout_s: float | None = None, retries: int | None = None,
                       backoff_s: float | None = None) -> Frame:
        if self._transport is None:
            await self.open()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        backoff = self.backoff_s if backoff_s is None else backoff_s
        attempts = 1 + (self.retries if retries is None else retries)
        tid = self._allocate_tid()
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[tid] = _Pending(host, deoj, future, [])
        frame = Frame(tid, self.seoj, deoj, esv, props, get_props)
        try:
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(backoff * 2 ** (attempt - 1))
                try:
                    self._send(frame, host, port)
                except OSError as exc:
                    raise TransientDeviceError(f"{host}:{port}#{deoj}", errors.CONNECTION_LOST,
                                               f"send failed: {exc.strerror or exc}") from None
                done, _ = await asyncio.wait({future}, timeout=timeout)
                if done:
                    return future.result()
            raise TransientDeviceError(
                f"{host}:{port}#{deoj}", errors.TIMEOUT,
                f"no answer to ESV 0x{esv:02X} within {timeout:g} s x {attempts} attempts")
        finally:
            self._pending.pop(tid, None)

    async def get(self, host: str, port: int, eoj: Eoj, epcs: Iterable[int], *,
                  required: Iterable[int] = (), timeout_s: float | None = None,
                  retries: int | None = None, backoff_s: float | None = None) -> GetResult:
        """Read properties (Get); a Get_SNA gives the answered ones, naming the refused.

        Raises TransientDeviceError on timeout and PermanentDeviceError when an EPC in
        ``required`` is refused.
        """
        wanted = tuple(epcs)
        reply = await self._request(host, port, eoj, Esv.GET,
                                    tuple(Property(e) for e in wanted), (), timeout_s, retries, backoff_s)
        result = _get_result(reply.properties)
        if reply.esv not in (Esv.GET_RES, Esv.GET_SNA):
            raise PermanentDeviceError(f"{host}:{port}#{eoj}", errors.EXCEPTION_RESPONSE,
                                       f"answered Get with ESV 0x{reply.esv:02X}")
        _raise_if_refused(f"{host}:{port}#{eoj}", "Get", result.refused, required)
        return result

    async def set(self, host: str, port: int, eoj: Eoj, values: Mapping[int, bytes], *,
                  ack: bool = True, timeout_s: float | None = None,
                  retries: int | None = None, backoff_s: float | None = None) -> None:
        """Write properties: SetC awaiting Set_Res (``ack``), or SetI without waiting.

        Raises PermanentDeviceError naming the EPCs a SetC_SNA refused.
        """
        props = tuple(Property(epc, edt) for epc, edt in values.items())
        if not ack:
            if self._transport is None:
                await self.open()
            self._send(Frame(self._allocate_tid(), self.seoj, eoj, Esv.SETI, props), host, port)
            return
        reply = await self._request(host, port, eoj, Esv.SETC, props, (), timeout_s, retries, backoff_s)
        refused = tuple(p.epc for p in reply.properties if p.edt)
        if reply.esv != Esv.SET_RES:
            refused = refused or tuple(values)
        _raise_if_refused(f"{host}:{port}#{eoj}", "SetC", refused, refused)

    async def set_get(self, host: str, port: int, eoj: Eoj, values: Mapping[int, bytes],
                      epcs: Iterable[int], *, timeout_s: float | None = None,
                      retries: int | None = None) -> GetResult:
        """Write then read in one SetGet; raises when a set is refused."""
        props = tuple(Property(epc, edt) for epc, edt in values.items())
        reply = await self._request(host, port, eoj, Esv.SETGET, props,
                                    tuple(Property(e) for e in epcs), timeout_s, retries)
        where = f"{host}:{port}#{eoj}"
        if reply.esv not in (Esv.SETGET_RES, Esv.SETGET_SNA):
            raise PermanentDeviceError(where, errors.EXCEPTION_RESPONSE,
                                       f"answered SetGet with ESV 0x{reply.esv:02X}")
        refused_sets = tuple(p.epc for p in reply.properties if p.edt)
        _raise_if_refused(where, "SetGet", refused_sets, refused_sets)
        return _get_result(reply.get_properties)

    async def inf_req(self, host: str, port: int, eoj: Eoj, epcs: Iterable[int], *,
                      timeout_s: float | None = None) -> GetResult:
        """Ask for a notification (INF_REQ) and return the INF answer's values."""
        reply = await self._request(host, port, eoj, Esv.INF_REQ,
                                    tuple(Property(e) for e in epcs), (), timeout_s, 0)
        return _get_result(reply.properties)

    # ---- discovery ---------------------------------------------------------------------------

    async def discover(self, timeout_s: float = 1.0, multicast: bool = True,
                       hosts: Sequence[str | tuple[str, int]] = ()) -> tuple[DiscoveredNode, ...]:
        """Find nodes: their instance lists (0xD6), maker codes and property maps.

        ``multicast`` sends to 224.0.23.0:3610; ``hosts`` are asked by unicast ("force
        polling"; a bare host means port 3610). Waits ``timeout_s`` [s] for answers.
        """
        if self._transport is None:
            await self.open()
        targets = [(h, ECHONET_PORT) if isinstance(h, str) else (h[0], int(h[1])) for h in hosts]
        tid = self._allocate_tid()
        self._pending[tid] = _Pending(None, NODE_PROFILE, None, [])
        request = Frame(tid, self.seoj, NODE_PROFILE, Esv.GET,
                        (Property(0xD6), Property(0x8A)))
        try:
            if multicast:
                self._send_multicast(request)
            for host, port in targets:
                self._send(request, host, port)
            await self._await_answers(tid, timeout_s, None if multicast else len(targets))
            answers = self._pending[tid].collected
        finally:
            self._pending.pop(tid, None)
        nodes = {}
        for host, port, frame in answers:
            nodes.setdefault((host, port), frame)
        found = [await self._describe_node(h, p, f, timeout_s) for (h, p), f in nodes.items()]
        return tuple(sorted(found, key=lambda n: (n.host, n.port)))

    def _send_multicast(self, request: Frame) -> None:
        try:
            self._send(request, MULTICAST_GROUP, ECHONET_PORT)
        except OSError as exc:
            log.warning("echonet multicast discovery not sent error=%s (use unicast hosts)",
                        exc.strerror or exc)

    async def _await_answers(self, tid: int, timeout_s: float, expected: int | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            hosts = {(h, p) for h, p, _ in self._pending[tid].collected}
            if expected is not None and len(hosts) >= expected:
                return
            await asyncio.sleep(min(0.01, max(0.0, deadline - loop.time())))

    async def _describe_node(self, host: str, port: int, frame: Frame,
                             timeout_s: float) -> DiscoveredNode:
        maker = _maker(frame.edt(0x8A))
        try:
            instances = decode_instance_list(frame.edt(0xD6) or b"")
        except KnowledgeError as exc:
            log.warning("echonet node=%s:%s bad instance list: %s", host, port, exc)
            instances = ()
        objects = []
        for eoj in instances:
            objects.append(await self._describe_object(host, port, eoj, timeout_s))
        return DiscoveredNode(host, port, maker, tuple(objects))

    async def _describe_object(self, host: str, port: int, eoj: Eoj,
                               timeout_s: float) -> DiscoveredObject:
        try:
            got = await self.get(host, port, eoj, (0x8A, 0x9F, 0x9E, 0x9D),
                                 timeout_s=timeout_s, retries=1)
        except errors.DeviceError as exc:
            log.warning("echonet object=%s:%s#%s not described: %s", host, port, eoj, exc.detail)
            got = GetResult({})
        return DiscoveredObject(eoj, _maker(got.get(0x8A)), _map(got.get(0x9F)),
                                _map(got.get(0x9E)), _map(got.get(0x9D)))


def _get_result(props: tuple[Property, ...]) -> GetResult:
    return GetResult({p.epc: p.edt for p in props if p.edt},
                     tuple(p.epc for p in props if not p.edt))


def _raise_if_refused(where: str, service: str, refused: Iterable[int],
                      required: Iterable[int]) -> None:
    bad = sorted(set(refused) & set(required))
    if bad:
        names = ", ".join(f"0x{e:02X}" for e in bad)
        raise PermanentDeviceError(where, PROPERTY_REFUSED,
                                   f"{service} refused for EPC {names} (SNA)")


def _maker(edt: bytes | None) -> int | None:
    return int.from_bytes(edt, "big") if edt and len(edt) == 3 else None


def _map(edt: bytes | None) -> frozenset[int]:
    if not edt:
        return frozenset()
    try:
        return decode_property_map(edt)
    except KnowledgeError:
        return frozenset()


# ---- one socket per local port, shared by the drivers of an event loop -------------------------

#: Shared clients per event loop: ``(local_host, local_port) -> [client, users]``.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], list]] = \
    weakref.WeakKeyDictionary()


async def acquire_shared(local_port: int = 0, local_host: str = "0.0.0.0") -> EchonetClient:
    """The client bound to ``(local_host, local_port)`` for this event loop, opened on first use.

    Every driver that was given no client of its own uses one of these: a daemon then holds one
    UDP socket on an ephemeral port for all its ECHONET Lite devices, and one on port 3610 for
    all devices with the ``replies_to_3610`` quirk (a second socket could not bind 3610).
    Each :func:`acquire_shared` must be matched by one :func:`release_shared`; the last user
    closes the socket. Requests carry their own timeout, retries and backoff, so devices with
    different quirks share one client safely.
    """
    pool = _SHARED.setdefault(asyncio.get_running_loop(), {})
    entry = pool.get((local_host, local_port))
    if entry is None or not entry[0].is_open:
        client = EchonetClient(local_host, local_port)
        await client.open()
        entry = pool[(local_host, local_port)] = [client, 0]
    entry[1] += 1
    return entry[0]


async def release_shared(client: EchonetClient) -> None:
    """Give back a client from :func:`acquire_shared`; the last user closes it."""
    pool = _SHARED.get(asyncio.get_running_loop(), {})
    for key, entry in list(pool.items()):
        if entry[0] is client:
            entry[1] -= 1
            if entry[1] <= 0:
                del pool[key]
                await client.close()
            return
