"""EIS at the cell's own potential: the 1260 holds its own DC bias, so the procedures bias at the open-circuit
voltage the cycler reads (in-situ: the voltage at the interruption) and refuse a spectrum outside the EIS voltage
limits. The simulated cells carry the DC current a bias drives, so a wrong bias shows in the cell's state."""

from __future__ import annotations

import json
import math
from contextlib import contextmanager

import pytest

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.eis import EISProcedure
from labctl.procedures.insitu_eis import InSituEISProcedure
from labctl.sim_instruments.anode_free import AnodeFreeCell
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.full_cell import FullCell
from labctl.store import Store
from labctl.store.folder import EVENTS, SPECTRA

AREA = math.pi * 0.6**2
WIDE = {"eis_lower_voltage": 0.0, "eis_upper_voltage": 5.0}  # a full cell's window
QUICK = {"points_per_decade": 2, "stop_frequency": 10.0}


def charged_lco() -> FullCell:
    cell = FullCell("LCO|Ag|Li", area_cm2=AREA)
    cell.advance(1e-3, 3600.0)  # an hour at 1 mA, then a rest: ≈4 V at open circuit
    cell.advance(0.0, 600.0)
    return cell


@contextmanager
def bench_with(tmp_path, cell):
    """A bench whose channel 1 (the cycler role, under the analyzer) holds ``cell``; others hold copies."""
    with SimBench(lambda n: cell if n == 1 else charged_lco(), channels=2, speed=None) as sim:
        path = tmp_path / "bench.toml"
        path.write_text(sim.config_toml(), encoding="utf-8")
        with open_bench(str(path)) as bench:
            yield bench


def run(tmp_path, procedure, cell, listeners: Listeners | None = None):
    with bench_with(tmp_path, cell) as bench:
        return Runner(Store(tmp_path / "store"), listeners or Listeners()).run(procedure, bench)


def events(outcome) -> list[dict]:
    return [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]


def eis(**params) -> EISProcedure:
    procedure = EISProcedure()
    for name, value in {**QUICK, **params}.items():
        setattr(procedure, name, value)
    procedure.check()
    return procedure


def test_eis_biases_a_full_cell_at_its_open_circuit_voltage_and_leaves_it_as_it_was(tmp_path):
    cell, twin = charged_lco(), charged_lco()
    outcome = run(tmp_path, eis(**WIDE), cell)
    assert outcome.status == "finished"
    assert outcome.result["dc_bias_V"] == pytest.approx(twin.open_circuit_voltage, abs=3e-3)
    assert (outcome.folder / SPECTRA).exists()
    assert [e["dc_bias_V"] for e in events(outcome) if e["kind"] == "dc_bias"] == [outcome.result["dc_bias_V"]]
    # no DC current flowed: the cathode holds the lithium it held (rest aside, the twin's state)
    twin.advance(0.0, 1.0)
    assert cell.cathode_lithium_fraction == pytest.approx(twin.cathode_lithium_fraction, abs=1e-5)


def test_a_zero_volt_bias_would_discharge_the_full_cell(tmp_path):
    """What the emulator makes a test see when a procedure biases at 0 V, as labctl did."""
    cell, twin = charged_lco(), charged_lco()
    outcome = run(tmp_path, eis(bias_from="dc_bias", dc_bias=0.0, eis_lower_voltage=-1.0, eis_upper_voltage=5.0),
                  cell)
    assert outcome.status == "finished" and outcome.result["dc_bias_V"] == 0.0
    assert cell.cathode_lithium_fraction > twin.cathode_lithium_fraction + 1e-3


def test_eis_refuses_a_spectrum_whose_bias_leaves_the_eis_voltage_limits(tmp_path):
    cell, twin = charged_lco(), charged_lco()
    outcome = run(tmp_path, eis(), cell)  # Sandoval's −1…1 V against a ≈4 V cell
    assert outcome.status == "finished"
    (refused,) = [e for e in events(outcome) if e["kind"] == "spectrum_refused"]
    assert refused["dc_bias_V"] == pytest.approx(twin.open_circuit_voltage, abs=3e-3)
    assert "EIS voltage limits" in refused["message"] and "eis_upper_voltage" in refused["message"]
    assert outcome.result["headline"].startswith("no spectrum: DC bias")
    assert not (outcome.folder / SPECTRA).exists()
    assert cell.cathode_lithium_fraction == pytest.approx(twin.cathode_lithium_fraction, abs=1e-5)


def test_eis_limits_count_the_ac_peak():
    procedure = eis(amplitude=10.0)
    assert procedure.bias_refusal(0.98) is None
    assert "outside the EIS voltage limits" in procedure.bias_refusal(0.99)  # 0.99 V + 14.1 mV peak > 1 V


def test_eis_lower_limit_must_be_below_the_upper():
    procedure = EISProcedure()
    procedure.eis_lower_voltage = 1.0
    with pytest.raises(ValueError, match="eis_lower_voltage"):
        procedure.check()


def insitu(**params) -> InSituEISProcedure:
    procedure = InSituEISProcedure()
    for name, value in {"cycles": 1, "half_cycle_capacity": 0.1, "points_per_decade": 3, **params}.items():
        setattr(procedure, name, value)
    procedure.check()
    return procedure


def test_insitu_biases_each_spectrum_at_the_voltage_of_the_interruption_and_skips_one_outside_the_limits(tmp_path):
    cell = AnodeFreeCell("Ag-Cu", area_cm2=AREA)  # Sandoval's Ag-coated Cu; pristine, it rests near 2 V
    lithium: dict[str, float] = {}  # the working electrode's lithium at the last sample

    def inventory() -> float:
        return cell.active_li_Ah + cell.alloy_charge_Ah + cell.dead_li_Ah

    def on_sample(row):
        lithium["sample"] = inventory()

    def on_event(event):
        if event["kind"] == "spectrum" and event["when"] == "end of cycle":
            lithium["after end-of-cycle spectrum"] = inventory()

    outcome = run(tmp_path, insitu(), cell, Listeners(sample=on_sample, event=on_event))
    assert outcome.status == "finished"
    found = events(outcome)
    refused = [e for e in found if e["kind"] == "spectrum_refused"]
    spectra = [e for e in found if e["kind"] == "spectrum"]
    # the pristine cell is refused (≈2 V is outside −1…1 V), and the cycling goes on
    assert [(e["cycle"], e["when"]) for e in refused] == [(0, "before cycling")]
    assert refused[0]["dc_bias_V"] > 1.0
    assert outcome.result["before"]["dc_bias_V"] == refused[0]["dc_bias_V"] and outcome.result["cycles"]
    # after stripping, the collector rests well above 0 V: the spectrum is biased there ...
    end = spectra[-1]
    assert end["when"] == "end of cycle" and end["dc_bias_V"] > 0.05
    # ... and no DC current plated or stripped lithium while it was measured (a 0 V bias would lithiate the Ag)
    assert lithium["after end-of-cycle spectrum"] == pytest.approx(lithium["sample"], abs=1e-7)


def test_insitu_takes_a_spectrum_before_the_first_cycle(tmp_path):
    outcome = run(tmp_path, insitu(), SymmetricCell("LPSCl", area_cm2=AREA))
    spectra = [e for e in events(outcome) if e["kind"] == "spectrum"]
    assert (spectra[0]["index"], spectra[0]["cycle"], spectra[0]["when"]) == (1, 0, "before cycling")
    assert spectra[0]["dc_bias_V"] == pytest.approx(0.0, abs=2e-3)  # a symmetric cell rests at 0 V
    assert outcome.result["before"]["R_tot_ohm"] > 0
    assert spectra[0]["test_time_h"] < spectra[1]["test_time_h"]
