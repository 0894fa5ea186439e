"""The Modbus relay board driver against the emulated board on loopback: every function code,
the wiring translation, the watchdog, a reboot, a stuck contactor and a board that is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from drivers.capabilities import Device, SwitchesLoads, SwitchState
from drivers.errors import PermanentDeviceError, TransientDeviceError
from drivers.profile import ModbusEndpoint
from drivers.relay.modbus_board import ModbusRelayBoard, RelayBoardMap
from sim.emulators.relay_board import RelayBoardEmulator, RelayBoardSpec
from tests.fixtures.emulators import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


Factory = Callable[..., Awaitable[tuple[RelayBoardEmulator, ModbusRelayBoard]]]


@pytest.fixture
async def board_pair() -> AsyncIterator[Factory]:
    started: list[tuple[RelayBoardEmulator, ModbusRelayBoard]] = []

    async def start(spec: RelayBoardSpec | None = None, board: RelayBoardMap | None = None,
                    clock: FakeClock | None = None, timeout_s: float = 0.5) -> tuple[RelayBoardEmulator, ModbusRelayBoard]:
        spec = spec or RelayBoardSpec(channels=8, coil_base=16, discrete_input_base=32, watchdog_register=100)
        emulator = RelayBoardEmulator(spec, port=free_port(), clock=clock or FakeClock())
        await emulator.start()
        board = board or RelayBoardMap(channels=4, coil_base=16, discrete_input_base=32, watchdog_register=100,
                                       watchdog_timeout_s=10.0)
        driver = ModbusRelayBoard(ModbusEndpoint("127.0.0.1", emulator.port, timeout_s=timeout_s), board,
                                  name="test-relay")
        started.append((emulator, driver))
        return emulator, driver

    yield start
    for emulator, driver in started:
        await driver.close()
        await emulator.stop()


def _on(states: tuple[SwitchState, ...]) -> list[tuple[bool | None, bool | None]]:
    return [(s.commanded_on, s.feedback_on) for s in states]


async def test_capabilities_and_connect_arms_watchdog(board_pair: Factory) -> None:
    emulator, driver = await board_pair()
    assert isinstance(driver, Device) and isinstance(driver, SwitchesLoads)
    await driver.connect()
    assert emulator.watchdog_raw == 10  # FC6 at connect
    assert _on(await driver.read_switches()) == [(True, True)] * 4  # NC wiring, coils off: served


async def test_fc5_fc15_fc1_fc2_with_normally_closed_wiring(board_pair: Factory) -> None:
    emulator, driver = await board_pair()
    await driver.connect()
    await driver.set_switch(1, False)  # FC5: energise coil 17 to disconnect
    assert emulator.coils[:4] == [False, True, False, False]
    await driver.set_switches({2: False, 3: False})  # FC15
    assert emulator.coils[:4] == [False, True, True, True]
    reading = await driver.read_snapshot()  # FC1 + FC2
    assert _on(reading.switches) == [(True, True), (False, False), (False, False), (False, False)]
    await driver.set_switches({1: True, 2: True, 3: False})
    assert emulator.coils[:4] == [False, False, False, True]


async def test_normally_open_wiring(board_pair: Factory) -> None:
    board = RelayBoardMap(channels=2, coil_base=16, discrete_input_base=32, watchdog_register=None,
                          energised_disconnects=False)
    emulator, driver = await board_pair(board=board)
    await driver.connect()
    assert _on(await driver.read_switches()) == [(False, False)] * 2  # NO, de-energised: cut
    await driver.set_switch(0, True)
    assert emulator.coils[0] is True
    assert _on(await driver.read_switches()) == [(True, True), (False, False)]
    assert emulator.watchdog_raw == 0  # no watchdog register in the map: never written


async def test_feedback_lags_then_follows(board_pair: Factory) -> None:
    clock = FakeClock()
    spec = RelayBoardSpec(channels=8, coil_base=16, discrete_input_base=32, contactor_delay_s=0.5)
    _emulator, driver = await board_pair(spec=spec, clock=clock)
    await driver.connect()
    await driver.set_switch(0, False)
    assert _on(await driver.read_switches())[0] == (False, True)  # commanded, contactor not yet
    clock.now_s += 0.6
    assert _on(await driver.read_switches())[0] == (False, False)


async def test_stuck_contactor_shows_in_feedback(board_pair: Factory) -> None:
    emulator, driver = await board_pair()
    await driver.connect()
    emulator.faults.stuck_channels.add(2)
    await driver.set_switches({0: False, 1: False, 2: False})
    assert _on(await driver.read_switches())[:3] == [(False, False), (False, False), (False, True)]


async def test_watchdog_expiry_resets_outputs(board_pair: Factory) -> None:
    clock = FakeClock()
    emulator, driver = await board_pair(clock=clock)
    await driver.connect()
    await driver.set_switch(0, False)
    clock.now_s += 9.0
    await driver.set_switch(0, False)  # a re-write within the timeout feeds the watchdog
    clock.now_s += 9.0
    assert _on(await driver.read_switches())[0] == (False, False)
    clock.now_s += 2.0  # 11 s since the last write, reads do not count
    assert _on(await driver.read_switches())[0] == (True, True)
    assert emulator.watchdog_resets == 1


async def test_reboot_is_visible_in_commanded_state(board_pair: Factory) -> None:
    emulator, driver = await board_pair()
    await driver.connect()
    await driver.set_switches({0: False, 1: False})
    emulator.reboot()
    assert _on(await driver.read_switches())[:2] == [(True, True), (True, True)]
    await driver.set_switches({0: False, 1: False})  # re-driven
    assert _on(await driver.read_switches())[:2] == [(False, False), (False, False)]


async def test_no_reply_is_a_one_line_transient_error(board_pair: Factory) -> None:
    emulator, driver = await board_pair(timeout_s=0.2)
    await driver.connect()
    emulator.faults.no_reply = True
    with pytest.raises(TransientDeviceError) as info:
        await driver.read_switches()
    assert str(info.value) == "test-relay: no answer reading coils 16..19"
    emulator.faults.no_reply = False
    assert len(await driver.read_switches()) == 4  # heals on a new connection


async def test_wrong_coil_base_is_permanent(board_pair: Factory) -> None:
    board = RelayBoardMap(channels=4, coil_base=200, discrete_input_base=32, watchdog_register=None)
    _emulator, driver = await board_pair(board=board)
    with pytest.raises(PermanentDeviceError) as info:
        await driver.connect()
    assert "\n" not in str(info.value)
    assert "reading coils 200..203" in str(info.value) and "check the relay profile" in str(info.value)


async def test_refused_connection_is_transient() -> None:
    driver = ModbusRelayBoard(ModbusEndpoint("127.0.0.1", free_port(), timeout_s=0.3),
                              RelayBoardMap(channels=2), name="gone")
    with pytest.raises(TransientDeviceError) as info:
        await driver.connect()
    assert str(info.value).startswith("gone: cannot connect to relay board at 127.0.0.1:")
    with pytest.raises(PermanentDeviceError, match="channel 5 out of range 0..1"):
        await driver.set_switch(5, True)


async def test_site_binding_builds_the_board_from_its_profile(tmp_path) -> None:  # noqa: ANN001
    from gridctl.config import load_site
    from gridctl.devices import SiteDevices
    from tests.fixtures.relay_site import write_relay_site

    site = load_site(write_relay_site(tmp_path))
    binding = SiteDevices.from_config(site, node_ids=["store"]).binding("store-relay")
    assert isinstance(binding.driver, ModbusRelayBoard) and binding.kind == "relay_board"
    board = binding.driver.board
    assert (board.channels, board.coil_base, board.discrete_input_base, board.watchdog_register) == (8, 0, 0, 100)
    assert board.energised_disconnects and board.watchdog_raw == 30
