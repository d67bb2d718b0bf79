"""Instrument faults are not cell failures: a CCD run through the fault proxy, whose current readings are 100x off
with a valid CTI checksum, ends as an instrument fault, never as a short."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.ccd import CCDProcedure
from labctl.procedures.cycling import implausible_current
from labctl.roles import CyclerReading
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.store import Store
from labctl.store.folder import EVENTS

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[1] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

CHANNELS_INFO_FB = bytes.fromhex("03 00 BA EE")
CURRENT_AT = 24 + 1681  # frame offset of the first channel record's f32 current


def run_through_proxy(tmp_path, procedure, faults):
    """Run ``procedure`` on a simulated bench whose cycler is reached through a fault proxy with ``faults``."""
    with SimBench(lambda n: SymmetricCell("bare", area_cm2=procedure.area_cm2, seed=n), speed=None) as sim, \
            fault_proxy.FaultProxy(sim.cycler.address) as proxy:
        for kind, options in faults:
            proxy.inject(kind, command=CHANNELS_INFO_FB, **options)
        path = tmp_path / "bench.toml"
        path.write_text(sim.config_toml().replace(f"{sim.addresses()['cycler']}", f"127.0.0.1:{proxy.port}"),
                        encoding="utf-8")
        with open_bench(str(path)) as bench:
            outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
    events = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    return outcome, events, proxy


def test_current_100x_off_with_a_valid_checksum_fails_the_run_as_an_instrument_fault(tmp_path):
    outcome, events, proxy = run_through_proxy(tmp_path, CCDProcedure(stop_density=0.3),
                                               [("scale", {"offset": CURRENT_AT, "factor": 100.0, "count": -1})])
    assert "scale" in proxy.injected
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "instrument fault, not the cell" in outcome.error
    assert any(e["kind"] == "fault" and "instrument fault" in e["message"] for e in events)
    assert not (outcome.result or {}).get("failure_mode")


def test_one_implausible_reading_is_read_again_and_the_run_goes_on(tmp_path):
    procedure = CCDProcedure(stop_density=0.2)
    faults = [("delay", {"seconds": 0.0, "count": 30}),  # let the first readings (rest, start) through untouched
              ("scale", {"offset": CURRENT_AT, "factor": 100.0})]
    outcome, events, proxy = run_through_proxy(tmp_path, procedure, faults)
    assert proxy.injected.count("scale") == 1
    assert outcome.status == "finished", outcome.error
    assert [e["kind"] for e in events].count("implausible_reading") == 1


def reading(current_A: float, *, status: str = "Charge", active: bool = True) -> CyclerReading:
    return CyclerReading(test_time_s=10.0, step_time_s=10.0, voltage_V=0.01, current_A=current_A,
                         charge_capacity_Ah=0.0, discharge_capacity_Ah=0.0, status=status, segment_active=active)


@pytest.mark.parametrize("current_A, status, active, set_A, implausible", [
    (1e-4, "Charge", True, 1e-4, False),
    (1e-2, "Charge", True, 1e-4, True),  # 100x off
    (-1e-4, "Discharge", True, 1e-4, True),  # wrong sign
    (0.0, "Rest", False, 1e-4, False),  # the segment ended
    (1e-2, "Charge", True, 0.0, False),  # a voltage hold: no set current to compare
])  # fmt: skip
def test_implausible_current_compares_with_the_set_point(current_A, status, active, set_A, implausible):
    assert (implausible_current(reading(current_A, status=status, active=active), set_A) is not None) == implausible

