"""What the daemon queues as telemetry: nodes, router links, load switches and the controller's
health row."""

import datetime as dt

from gridctl.controller.switches import ShedState, SwitchReading
from gridctl.controller.types import ControllerState, Mode, NodeReading, Snapshot
from gridctl.daemon.clock import SystemClock
from gridctl.daemon.lifecycle.build import LedgerTelemetry
from gridctl.daemon.lifecycle.storage import StorageHealth
from gridctl.daemon.stages.cycle import CycleReport
from gridctl.daemon.stages.telemetry import TelemetryRecorder
from gridctl.ledger import Ledger

NOW = dt.datetime(2026, 8, 3, 3, tzinfo=dt.timezone.utc)


def test_a_sample_queues_nodes_links_and_the_controller_with_backlogs(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite", "misono") as ledger:
        ledger.enqueue_telemetry(["telemetry,site=misono,device=old x_kw=1 1"])  # one row waiting
        sink = LedgerTelemetry("misono", ledger, StorageHealth(SystemClock()))
        sink.refresh()
        recorder = TelemetryRecorder("misono", 60.0, sink)
        snapshot = Snapshot(NOW, nodes={"home-1": NodeReading(pv_kw=2.5, load_kw=1.0, soc_pct=55.0)},
                            link_flow_kw={"link-a": -1.25, "link-b": None},
                            switches={"store-relay": (SwitchReading(0, False, False), SwitchReading(1, False, True),
                                                      SwitchReading(2, None, None))})
        shedding = ShedState(off_tiers=(3,), failed=frozenset({("store-relay", 1)}))
        report = CycleReport(at_utc=NOW, duration_s=0.125, stage_faults={"plan": "timeout"},
                             device_faults={"home-1-pv": None, "home-1-battery": "timeout"},
                             periods_pending=2)
        recorder.observe(snapshot, ControllerState(Mode.ISLANDED, NOW, shedding=shedding), report, NOW)
        recorder.transition("grid_connected", "islanded", ("grid lost",), NOW)
        lines = sorted(line for _, line in ledger.outbox_peek(10) if "device=old" not in line)
    ns = 1785726000000000000
    assert lines == [  # line protocol sorts fields by name
        f'telemetry,device=controller,site=misono cycle_s=0.125,device_faults=1i,mode="islanded",'
        f'outbox_backlog_rows=1i,periods_pending=2i,shed_tiers_off=1i,stage_faults=1i,switch_faults=1i {ns}',
        f'telemetry,device=controller,site=misono notes="grid lost",transition_from="grid_connected",'
        f'transition_to="islanded" {ns}',
        f"telemetry,device=home-1,member=home-1,site=misono load_kw=1,pv_kw=2.5,soc_pct=55 {ns}",
        f"telemetry,device=link-a,site=misono flow_kw=-1.25 {ns}",  # an unread link sends nothing
        # a switch channel's row: commanded and measured state (a channel read as nothing sends nothing)
        f"telemetry,device=store-relay/0,site=misono commanded_on=false,feedback_on=false {ns}",
        f"telemetry,device=store-relay/1,site=misono commanded_on=false,feedback_on=true {ns}",
    ]
