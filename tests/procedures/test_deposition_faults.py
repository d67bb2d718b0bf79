"""A deposition on the simulated bench with the serial fault relay between the SQM-160 driver and its emulator: a
corrupted reply mid-layer is refused and read again (the layer reaches its target); a monitor that stops answering
ends the run as an instrument fault, with the shutter closed or the failure to confirm it recorded."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.base import set_parameters
from labctl.procedures.deposition import DepositionProcedure
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.sqm160 import MonitorSetup
from labctl.store import Store
from labctl.store.folder import EVENTS

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[1] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

SKIP = ("delay", {"count": 40})  # the replies of programming, zeroing, opening and the first readings pass


def deposit_through_relay(tmp_path, faults):
    """Deposit a 5 nm W layer with the monitor reached through a serial relay with ``faults``; the outcome, the
    events and whether the shutter is open once the bench is closed."""
    procedure = DepositionProcedure()
    set_parameters(procedure, {"sample_interval": "1", "stack": "W:19.3:0.163:100:5:200"})
    with SimBench(lambda n: SymmetricCell("bare", area_cm2=1.13), channels=1, speed=None,
                  rate_monitor=MonitorSetup()) as sim, fault_proxy.SerialFaultRelay(sim.rate_monitor.port) as relay:
        for kind, options in faults:
            relay.inject(kind, **options)
        config = sim.config_toml().replace(sim.rate_monitor.port, relay.port)
        path = tmp_path / "bench.toml"
        path.write_text(config.replace('visa_library = "@py"\nshutter', 'visa_library = "@py"\ntimeout = 200\nshutter'),
                        encoding="utf-8")
        with open_bench(str(path)) as bench:
            outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
        shutter_open = sim.rate_monitor.shutter_open
    events = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    return outcome, events, relay, shutter_open


@pytest.mark.parametrize("kind", ["garble", "drop"])
def test_a_bad_reply_mid_layer_is_read_again_and_the_layer_reaches_its_target(tmp_path, kind):
    outcome, _, relay, shutter_open = deposit_through_relay(tmp_path, [SKIP, (kind, {})])
    assert relay.injected.count(kind) == 1
    assert outcome.status == "finished", outcome.error
    assert outcome.result["film"]["layers"][0]["monitor_nm"] == pytest.approx(5.0, abs=0.1)
    assert not shutter_open


def test_a_monitor_that_stops_answering_ends_the_run_as_an_instrument_fault(tmp_path):
    """The reading fails three times and the run ends failed. The relay still carries commands, so the shutdown's
    close-shutter command reaches the monitor, but its acknowledgement never comes: the run records that it could
    not confirm the instruments safe and tells the operator to close the shutter by hand."""
    outcome, events, _, shutter_open = deposit_through_relay(tmp_path, [SKIP, ("silent", {})])
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert outcome.error.startswith("SQMTimeout: reading the sensor failed 3 times")
    faults = [e["message"] for e in events if e["kind"] == "fault"]
    assert len(faults) == 2 and faults[1].startswith("could not leave the instruments safe: RuntimeError: the rate "
                                                     "monitor did not confirm the shutter closed (")
    assert faults[1].endswith("close the source's shutter by hand now")
    assert not shutter_open
