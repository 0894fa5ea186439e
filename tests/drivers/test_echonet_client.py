"""EchonetClient against the loopback ECHONET Lite node emulator (real UDP sockets)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from drivers.echonet.client import PROPERTY_REFUSED, EchonetClient, Notification
from drivers.echonet.frame import CONTROLLER, NODE_PROFILE, Eoj, Esv, Frame, Property, encode
from drivers.errors import PermanentDeviceError, TransientDeviceError
from sim.emulators.echonet_node import EchonetNode, EmulatedObject, EmulatedProperty

SWITCH = Eoj.of(0x05FD, 1)
BATTERY = Eoj.of(0x027D, 1)


def _switch_object(state: dict) -> EmulatedObject:
    def set_on(edt: bytes) -> bool:
        if edt not in (b"\x30", b"\x31"):
            return False
        state["0x80"] = edt
        return True

    return EmulatedObject(SWITCH, {
        0x80: EmulatedProperty(lambda: state["0x80"], set_on, announce=True),
        0x8A: EmulatedProperty(lambda: b"\x00\x00\x77"),
        0x88: EmulatedProperty(lambda: b"\x42"),
    }, on_reboot=lambda: state.update({"0x80": b"\x30"}))


@pytest.fixture
async def node():
    state = {"0x80": b"\x30"}
    async with EchonetNode("127.0.0.2", 0, [_switch_object(state)], maker_code=0x77) as server:
        server.state = state
        yield server


@pytest.fixture
async def client():
    async with EchonetClient("127.0.0.1", timeout_s=0.2, retries=2, backoff_s=0.01) as c:
        yield c


async def test_get_set_and_setget_round_trip(node, client):
    got = await client.get("127.0.0.2", node.port, SWITCH, [0x80, 0x8A, 0x88])
    assert got == {0x80: b"\x30", 0x8A: b"\x00\x00\x77", 0x88: b"\x42"} and got.refused == ()
    await client.set("127.0.0.2", node.port, SWITCH, {0x80: b"\x31"})
    assert node.state["0x80"] == b"\x31"
    got = await client.set_get("127.0.0.2", node.port, SWITCH, {0x80: b"\x30"}, [0x80, 0x9E])
    assert got[0x80] == b"\x30" and got[0x9E] == bytes((1, 0x80))


async def test_seti_writes_without_waiting(node, client):
    await client.set("127.0.0.2", node.port, SWITCH, {0x80: b"\x31"}, ack=False)
    for _ in range(100):
        if node.state["0x80"] == b"\x31":
            break
        await asyncio.sleep(0.01)
    assert node.state["0x80"] == b"\x31"


async def test_get_sna_returns_the_answered_and_names_the_refused(node, client):
    node.faults.get_sna = {0x88}
    got = await client.get("127.0.0.2", node.port, SWITCH, [0x80, 0x88, 0xF0])
    assert got == {0x80: b"\x30"}
    assert got.refused == (0x88, 0xF0)
    with pytest.raises(PermanentDeviceError, match=r"Get refused for EPC 0x88 \(SNA\)") as info:
        await client.get("127.0.0.2", node.port, SWITCH, [0x80, 0x88], required=[0x88])
    assert info.value.reason == PROPERTY_REFUSED and "\n" not in str(info.value)


async def test_setc_refused_names_the_epc(node, client):
    with pytest.raises(PermanentDeviceError, match=r"SetC refused for EPC 0x80"):
        await client.set("127.0.0.2", node.port, SWITCH, {0x80: b"\x99"})
    with pytest.raises(PermanentDeviceError, match=r"SetC refused for EPC 0x8A"):
        await client.set("127.0.0.2", node.port, SWITCH, {0x8A: b"\x00\x00\x01"})
    assert node.state["0x80"] == b"\x30"


async def test_no_reply_is_a_transient_error_after_every_retry(node, client):
    node.faults.no_reply = True
    with pytest.raises(TransientDeviceError, match=r"within 0.2 s x 3 attempts") as info:
        await client.get("127.0.0.2", node.port, SWITCH, [0x80])
    assert info.value.reason == "timeout"
    assert node.requests_seen == 3  # first attempt + 2 retries, same TID
    node.faults.no_reply = False
    assert (await client.get("127.0.0.2", node.port, SWITCH, [0x80]))[0x80] == b"\x30"


async def test_slow_answer_within_a_retry_is_accepted(node, client):
    node.faults.delay_s = 0.3  # longer than one attempt, shorter than all three
    got = await client.get("127.0.0.2", node.port, SWITCH, [0x80])
    assert got[0x80] == b"\x30"


async def test_rogue_replies_and_garbage_are_ignored(node, client):
    """Answers with a wrong TID, from another host, from the wrong SEOJ, and random bytes reach
    the client while it waits for a (delayed) genuine answer: only the genuine one counts."""
    node.faults.delay_s = 0.1
    rogue = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rogue.bind(("127.0.0.3", 0))
    try:
        task = asyncio.create_task(client.get("127.0.0.2", node.port, SWITCH, [0x80]))
        await asyncio.sleep(0.02)
        tid = client._next_tid - 1  # the request's TID, as a spoofer on the LAN could see
        fake = encode(Frame(tid, SWITCH, CONTROLLER, Esv.GET_RES, (Property(0x80, b"\x31"),)))
        wrong_tid = encode(Frame(tid + 5, SWITCH, CONTROLLER, Esv.GET_RES,
                                 (Property(0x80, b"\x31"),)))
        wrong_seoj = encode(Frame(tid, BATTERY, CONTROLLER, Esv.GET_RES,
                                  (Property(0x80, b"\x31"),)))
        for payload in (fake, b"\x10\x81\x00", bytes(range(40)), b"", wrong_tid):
            rogue.sendto(payload, ("127.0.0.1", client.local_port))
        node._send(wrong_seoj, ("127.0.0.1", client.local_port))
        got = await task
        assert got[0x80] == b"\x30"  # the genuine (delayed) answer, not the rogue 0x31
        assert client.ignored_datagrams >= 6
    finally:
        rogue.close()


async def test_garbage_to_the_node_is_ignored(node, client):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for payload in (b"", b"\x10\x81", bytes(range(255)), b"\x10\x81" + bytes(30)):
            sock.sendto(payload, ("127.0.0.2", node.port))
    finally:
        sock.close()
    got = await client.get("127.0.0.2", node.port, SWITCH, [0x80])
    assert got[0x80] == b"\x30"
    assert node.garbage_seen == 4


async def test_unicast_discovery_without_multicast_finds_every_node(client):
    battery = EmulatedObject(BATTERY, {0x80: EmulatedProperty(lambda: b"\x30"),
                                       0xE4: EmulatedProperty(lambda: b"\x32")})
    switch2 = EmulatedObject(Eoj.of(0x05FD, 2), {0x80: EmulatedProperty(lambda: b"\x31")})
    async with EchonetNode("127.0.0.4", 0, [battery], maker_code=0x0B) as a, \
            EchonetNode("127.0.0.5", 0, [switch2, _switch_object({"0x80": b"\x30"})],
                        maker_code=0x69) as b:
        nodes = await client.discover(0.5, multicast=False,
                                      hosts=[("127.0.0.4", a.port), ("127.0.0.5", b.port)])
    assert [(n.host, n.maker_code) for n in nodes] == [("127.0.0.4", 0x0B), ("127.0.0.5", 0x69)]
    assert [o.eoj for o in nodes[0].objects] == [BATTERY]
    assert nodes[0].objects[0].get_map == {0x80, 0xE4, 0x9D, 0x9E, 0x9F}
    assert {o.eoj for o in nodes[1].objects} == {Eoj.of(0x05FD, 2), SWITCH}
    sw = next(o for o in nodes[1].objects if o.eoj == SWITCH)
    assert sw.maker_code == 0x77 and sw.set_map == {0x80} and sw.inf_map == {0x80}


async def test_discovery_with_multicast_on_still_polls_listed_hosts(node, client):
    nodes = await client.discover(0.3, multicast=True, hosts=[("127.0.0.2", node.port)])
    assert [n.host for n in nodes] == ["127.0.0.2"]
    assert nodes[0].objects[0].eoj == SWITCH


async def test_node_profile_answers_instance_lists(node, client):
    got = await client.get("127.0.0.2", node.port, NODE_PROFILE, [0xD3, 0xD6, 0xD7, 0x8A])
    assert got[0xD3] == b"\x00\x00\x01"
    assert got[0xD6] == bytes.fromhex("01 05FD01")
    assert got[0xD7] == bytes.fromhex("01 05FD")
    assert got[0x8A] == b"\x00\x00\x77"


async def test_notifications_reach_the_callback_and_infc_is_acknowledged(node):
    seen: list[Notification] = []
    async with EchonetClient("127.0.0.1", on_notification=seen.append) as client:
        node.notify(SWITCH, [0x80], ("127.0.0.1", client.local_port))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.6", 0))
        sock.settimeout(2)
        try:
            infc = Frame(9, SWITCH, CONTROLLER, Esv.INFC, (Property(0x80, b"\x31"),))
            sock.sendto(encode(infc), ("127.0.0.1", client.local_port))
            ack, _ = await asyncio.get_running_loop().run_in_executor(None, sock.recvfrom, 64)
        finally:
            sock.close()
        assert ack[10] == Esv.INFC_RES and ack[2:4] == b"\x00\x09"
    assert [(n.host, n.frame.esv, n.frame.properties) for n in seen] == [
        ("127.0.0.2", Esv.INF, (Property(0x80, b"\x30"),)),
        ("127.0.0.6", Esv.INFC, (Property(0x80, b"\x31"),)),
    ]


async def test_inf_req_answers_with_inf(node, client):
    got = await client.inf_req("127.0.0.2", node.port, SWITCH, [0x80])
    assert got == {0x80: b"\x30"}


async def test_reboot_restores_defaults_and_silences_the_node(node, client):
    await client.set("127.0.0.2", node.port, SWITCH, {0x80: b"\x31"})
    node.reboot(silent_s=5.0)
    assert node.state["0x80"] == b"\x30"
    with pytest.raises(TransientDeviceError):
        await client.get("127.0.0.2", node.port, SWITCH, [0x80], retries=0)


async def test_binding_a_taken_port_is_one_clear_permanent_error(client):
    other = EchonetClient("127.0.0.1", client.local_port)
    with pytest.raises(PermanentDeviceError, match="cannot bind the ECHONET Lite client"):
        await other.open()


async def test_setget_with_a_refused_set_names_it(node, client):
    with pytest.raises(PermanentDeviceError, match=r"SetGet refused for EPC 0x80"):
        await client.set_get("127.0.0.2", node.port, SWITCH, {0x80: b"\x77"}, [0x80])
    node.faults.get_sna = {0x88}
    got = await client.set_get("127.0.0.2", node.port, SWITCH, {0x80: b"\x31"}, [0x80, 0x88])
    assert got == {0x80: b"\x31"} and got.refused == (0x88,)
