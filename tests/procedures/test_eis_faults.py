"""The EIS procedure on the simulated bench with the fault proxy between the 1260 driver and its emulator: a digit
changed on the wire is caught by the neighbour check and measured again, never stored as a clean point; a lost,
cut, late or missing result ends the run as an instrument fault (a SolartronError, no traceback) with no point
left in progress on the analyzer."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from labctl.bench import open_bench
from labctl.drivers.solartron import si1260
from labctl.engine.runner import Listeners, Runner
from labctl.procedures.eis import EISProcedure
from labctl.procedures.spectrum import log_frequencies
from labctl.sim_instruments.bench import SimBench
from labctl.sim_instruments.cells import SymmetricCell
from labctl.store import Store
from labctl.store.folder import EVENTS, SPECTRA

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[1] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

RESULT = rb"^[+-]\d\.\d{7}E[+-]\d\d,"  # a result line, not the answer to a query
FREQUENCIES = log_frequencies(1e6, 0.1, 10)  # the procedure's default sweep
SEED = 1  # the cell of cycler channel 1, which the analyzer measures


class SettledClock:
    """The bench's clock, which lets the proxy hand the emulator every command sent (the SI) before time moves."""

    def __init__(self, clock, proxy) -> None:
        self._clock, self._proxy = clock, proxy

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        self._proxy.settle()
        self._clock.wait(seconds, stop_at_event=stop_at_event)

    def now(self) -> float:
        return self._clock.now()

    def close(self) -> None:
        self._clock.close()


@pytest.fixture(autouse=True)
def _short_read_margin(monkeypatch):
    monkeypatch.setattr(si1260, "READ_MARGIN_S", 0.5)  # a lost line is waited for 0.5 s past the point, not 5 s


def run_through_proxy(tmp_path, faults):
    """Run an EIS spectrum at 0 V on a bare Li|SE|Li cell whose analyzer is reached through a line proxy with
    ``faults`` (each consumed by a result line); the outcome, the events, the spectra and whether a point was
    left in progress once the bench was closed."""
    procedure = EISProcedure(bias_from="dc_bias")
    with SimBench(lambda n: SymmetricCell("bare", area_cm2=procedure.area_cm2, seed=n), speed=None) as sim, \
            fault_proxy.FaultProxy(sim.impedance.address, framing="line") as proxy:
        for kind, options in faults:
            proxy.inject(kind, pattern=RESULT, **options)
        config = sim.config_toml().replace(f"::{sim.impedance.address[1]}::", f"::{proxy.port}::")
        path = tmp_path / "bench.toml"
        path.write_text(config.replace('visa_library = "@py"', 'visa_library = "@py"\ntimeout = 1000'),
                        encoding="utf-8")
        with open_bench(str(path)) as bench:
            bench.clock = SettledClock(bench.clock, proxy)
            outcome = Runner(Store(tmp_path / "store"), Listeners()).run(procedure, bench)
        left_in_progress = sim.impedance._pending is not None
    events = [json.loads(line) for line in (outcome.folder / EVENTS).read_text().splitlines()]
    spectra = pd.read_csv(outcome.folder / SPECTRA) if (outcome.folder / SPECTRA).exists() else None
    return outcome, events, spectra, proxy, left_in_progress


def skip(lines: int) -> tuple[str, dict]:
    return "delay", {"seconds": 0.0, "count": lines}


def test_changed_digits_are_measured_again_and_never_stored(tmp_path):
    """Z' and Z'' with a leading or an exponent digit changed (points 10, 25, 46) are suspected and measured again;
    the re-read replaces them. A changed frequency (point 60) is read again from the 1260 by the driver (DO)."""
    faults = [skip(10), ("digit", {"field": 1, "offset": 0}), skip(14), ("digit", {"field": 2, "offset": 0, "shift": 3}),
              skip(20), ("digit", {"field": 1, "offset": 6}), skip(13), ("digit", {"field": 0, "offset": 1})]
    outcome, events, spectra, proxy, _ = run_through_proxy(tmp_path, faults)
    assert proxy.injected.count("digit") == 4
    assert outcome.status == "finished", outcome.error
    rereads = [e for e in events if e["kind"] == "point_remeasured"]
    assert [(e["frequency_Hz"], e["verdict"]) for e in rereads] == [(FREQUENCIES[i], "replaced") for i in (10, 25, 46)]
    cell = SymmetricCell("bare", area_cm2=EISProcedure().area_cm2, seed=SEED)
    stored = spectra["Real Impedance / ohm"] + 1j * spectra["Imaginary Impedance / ohm"]
    for i in (10, 25, 46, 60):
        assert abs(stored[i] / cell.impedance(FREQUENCIES[i]) - 1) < 0.02, f"point {i} stored {stored[i]}"
    assert outcome.result["kk_pass"] and "flagged_points_Hz" not in outcome.result
    assert outcome.result["points_remeasured_Hz"] == [FREQUENCIES[i] for i in (10, 25, 46)]


@pytest.mark.parametrize("kind, options", [
    ("drop", {}), ("cut", {}), ("silent", {}), ("delay", {"seconds": 3.0}),
])  # fmt: skip
def test_a_lost_or_missing_result_ends_the_run_as_an_instrument_fault(tmp_path, kind, options):
    outcome, events, spectra, proxy, left_in_progress = run_through_proxy(tmp_path, [skip(10), (kind, options)])
    assert kind in proxy.injected
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert outcome.error.startswith(("SolartronError", "SolartronTimeout")) and "Traceback" not in outcome.error
    assert "instrument fault, not the cell" in outcome.error
    assert [e["kind"] for e in events if e["kind"] == "fault"] == ["fault"]
    assert spectra is None and outcome.result is None  # nothing half-measured is stored or analysed
    assert not left_in_progress
