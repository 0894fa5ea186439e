"""Relay boards and ``load.switches``: a coherent site loads; each mistake is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridctl.config import ConfigError, load_site
from tests.fixtures.relay_site import relay_board, relay_site_tree, write_relay_site


def test_relay_site_loads(tmp_path: Path) -> None:
    site = load_site(write_relay_site(tmp_path))
    store = site.node("store")
    assert [(s.device, s.channel) for s in store.load.switches] == [("store-relay", 0), ("store-relay", 1)]
    board = next(d for d in store.devices if d.kind == "relay_board")
    assert board.rating.channels == 8
    profile = site.device_profiles[board.profile]
    assert profile.relay is not None and profile.relay.energised_means == "disconnect"
    assert site.islanding.restore_step_delay_s == 10.0
    assert site.islanding.switch_confirm_cycles == 2


def _store(tree):  # noqa: ANN001, ANN202
    return next(n for n in tree["nodes"] if n["id"] == "store")


def _unknown_device(tree) -> None:  # noqa: ANN001
    _store(tree)["load"]["switches"][0]["device"] = "store-relayx"


def _out_of_range(tree) -> None:  # noqa: ANN001
    _store(tree)["load"]["switches"][1]["channel"] = 8


def _twice(tree) -> None:  # noqa: ANN001
    _store(tree)["load"]["switches"][1]["channel"] = 0


def _other_node(tree) -> None:  # noqa: ANN001
    _store(tree)["load"]["switches"][0]["device"] = "mall-relay"


def _not_a_switch(tree) -> None:  # noqa: ANN001
    _store(tree)["load"]["switches"][0]["device"] = "store-battery"


def _more_than_profile(tree) -> None:  # noqa: ANN001
    _store(tree)["devices"][-1]["rating"]["channels"] = 9


CASES = [
    (_unknown_device, "nodes[5].load.switches[0].device: unknown device 'store-relayx'"),
    (_out_of_range, "nodes[5].load.switches[1].channel: channel 8 out of range: 'store-relay' has channels 0..7"),
    (_twice, "nodes[5].load.switches[1].channel: channel 0 of 'store-relay' is already used at "
             "nodes[5].load.switches[0]"),
    (_other_node, "nodes[5].load.switches[0].device: 'mall-relay' belongs to node 'mall', not 'store'"),
    (_not_a_switch, "nodes[5].load.switches[0].device: 'store-battery' is a battery, not a switch"),
    (_more_than_profile, "nodes[5].devices[4].rating.channels: 9 channels, but profile "
                         "'generic-modbus-relay-8' has 8"),
]


@pytest.mark.parametrize(("breaker", "expected"), CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_switch_mistake_is_one_line(tmp_path: Path, breaker, expected: str) -> None:  # noqa: ANN001
    tree = relay_site_tree()
    breaker(tree)
    path = write_relay_site(tmp_path, tree)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    text = str(info.value)
    assert expected in text, text


def test_cli_names_the_bad_switch_in_one_line(tmp_path: Path) -> None:
    tree = relay_site_tree()
    _out_of_range(tree)
    path = write_relay_site(tmp_path, tree)
    proc = subprocess.run([sys.executable, "-c", "from gridctl.cli import main; main()", "config", "validate",
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "load.switches[1].channel: channel 8 out of range" in lines[0]


def test_relay_profile_needs_relay_block(tmp_path: Path) -> None:
    tree = relay_site_tree()
    tree["device_profiles"] = {"bad-relay": {"id": "bad-relay", "vendor": "X", "kind": "relay_board",
                                             "protocol": "modbus_relay"}}
    _store(tree)["devices"][-1] = relay_board("store") | {"profile": "bad-relay"}
    path = write_relay_site(tmp_path, tree)
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert "a relay_board profile needs a 'relay' block" in str(info.value)
