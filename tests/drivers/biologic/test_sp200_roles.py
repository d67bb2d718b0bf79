"""The SP-200 in labctl's roles, through labctl's EClib layer and the fake DLL at the ctypes boundary.

Expected values come from the cell's own physics (its noise-free impedance, the current that was set times the time
it flowed) and from the segment definitions, not from the driver's arithmetic.
"""

from __future__ import annotations

import math

import pytest

from labctl.drivers.biologic import techniques as tech
from labctl.drivers.biologic.eclib import EClib, EClibError, State
from labctl.drivers.biologic.sp200 import SP200, SP200Cycler, SP200Impedance, current_range
from labctl.procedures.spectrum import log_frequencies
from labctl.roles import CyclerChannel, ImpedanceAnalyzer, ResumeRefused
from labctl.sim_instruments.catalog import make_cell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.fake_eclib import LIB_DIR, FakeEClib
from labctl.sim_instruments.sp200 import SP200Channel

AREA = 1.131
I_SET = 2.83e-4  # A: 0.25 mA/cm² on 1.131 cm²


class Clock:
    """The role's clock over the bench's virtual clock, as SimClock steps it."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        self.clock.advance(seconds, stop_on_event=stop_at_event)

    def now(self) -> float:
        return self.clock.now


@pytest.fixture
def bench():
    clock = VirtualClock()
    cell = make_cell("bare", area_cm2=AREA, seed=4)
    channel = SP200Channel(clock, cell)
    sp200 = SP200(EClib(FakeEClib({0: channel})), "USB0", 1, LIB_DIR)
    yield Clock(clock), cell, channel, sp200
    sp200.close()


def run_segment(clock: Clock, cycler: SP200Cycler, poll_s: float = 10.0):
    reading = cycler.read()
    while reading.segment_active:
        clock.wait(poll_s)
        reading = cycler.read()
    return reading


def test_the_roles_are_what_procedures_ask_for(bench):
    _, _, _, sp200 = bench
    assert isinstance(SP200Cycler(sp200), CyclerChannel) and isinstance(SP200Impedance(sp200), ImpedanceAnalyzer)
    assert sp200.identity()["model"] == "SP-200" and sp200.identity()["channel"] == "1"


def test_a_charge_limited_segment_passes_its_charge_and_rests(bench):
    clock, _, channel, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    charge_Ah = I_SET * 1800 / 3600  # half an hour of current
    cycler.apply_current(I_SET, max_voltage_V=1.0, min_voltage_V=-1.0, until_charge_Ah=charge_Ah)
    first = cycler.read()
    assert first.segment_active and first.status == "Charge" and first.current_A == pytest.approx(I_SET)
    end = run_segment(clock, cycler)
    assert end.end_reason == "charge" and end.status == "Rest" and end.current_A == 0.0
    assert end.charge_capacity_Ah == pytest.approx(charge_Ah, rel=1e-5) and end.discharge_capacity_Ah == 0.0
    assert channel.running  # the OCV after the segment: measured, not left idle
    clock.wait(100.0)
    assert cycler.read().test_time_s == pytest.approx(clock.now(), abs=1e-3)  # one test clock across sequences


def test_a_discharge_counts_as_discharge_capacity(bench):
    clock, _, _, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    cycler.apply_current(-I_SET, max_voltage_V=1.0, min_voltage_V=-1.0, until_time_s=600.0)
    end = run_segment(clock, cycler)
    assert end.end_reason == "time" and end.step_time_s == pytest.approx(600.0, abs=1e-3)
    assert end.discharge_capacity_Ah == pytest.approx(I_SET * 600 / 3600, rel=1e-5) and end.charge_capacity_Ah == 0


@pytest.mark.parametrize(("sign", "reason"), [(1, "voltage_high"), (-1, "voltage_low")])
def test_a_voltage_limit_ends_the_segment_early(bench, sign, reason):
    clock, _, _, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    # below the cell's critical current (it would short), with a window narrower than its overpotential
    cycler.apply_current(sign * I_SET, max_voltage_V=0.005, min_voltage_V=-0.005, until_time_s=3600.0)
    end = run_segment(clock, cycler, poll_s=1.0)
    assert end.end_reason == reason and end.step_time_s < 3600


def test_a_voltage_hold_ends_when_the_current_has_fallen(bench):
    clock, _, _, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    cycler.apply_voltage(0.02, max_current_A=1e-3, until_time_s=7200.0, until_current_A=1e-3)
    end = run_segment(clock, cycler, poll_s=1.0)
    assert end.end_reason == "current_low"


def test_end_stops_the_channel_and_resume_is_refused(bench):
    _, _, channel, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    cycler.apply_current(I_SET, max_voltage_V=1.0, min_voltage_V=-1.0, until_time_s=600.0)
    cycler.end()
    assert not channel.running and channel.current_A == 0.0
    with pytest.raises(ResumeRefused, match="SP-200"):
        cycler.resume("t", 0.0)


def test_a_spectrum_is_the_cells_impedance(bench):
    clock, cell, channel, sp200 = bench
    analyzer = SP200Impedance(sp200)
    analyzer.configure(amplitude_V=0.01, dc_bias_V=0.0, at_open_circuit=True)
    frequencies = log_frequencies(2e6, 2.0, 5)
    points = list(analyzer.sweep(frequencies, clock))
    assert [f for f, _ in points] == pytest.approx(frequencies, rel=1e-6)
    for f, z in points:
        assert abs(z - cell.impedance(f)) < 0.02 * abs(cell.impedance(f))
    assert not channel.running  # no cycler test: the channel is stopped after the spectrum


def test_a_spectrum_during_a_test_goes_back_to_rest_and_keeps_the_test_clock(bench):
    clock, _, channel, sp200 = bench
    cycler, analyzer = SP200Cycler(sp200), SP200Impedance(sp200)
    cycler.begin("t")
    clock.wait(60.0)
    analyzer.configure(amplitude_V=0.01, at_open_circuit=True)
    assert len(list(analyzer.sweep(log_frequencies(1e5, 10.0, 3), clock))) == 13
    reading = cycler.read()
    assert channel.running and reading.status == "Rest" and not reading.segment_active
    assert reading.test_time_s == pytest.approx(clock.now(), abs=1e-3)


def test_a_spectrum_stopped_early_leaves_the_cell_at_open_circuit(bench):
    clock, _, channel, sp200 = bench
    analyzer = SP200Impedance(sp200)
    analyzer.configure(amplitude_V=0.01, at_open_circuit=True)
    sweep = analyzer.sweep(log_frequencies(1e4, 0.1, 5), clock)
    next(sweep)
    sweep.close()
    assert not channel.running and channel.current_A == 0.0


def test_galvanostatic_spectra_at_zero_dc_current(bench):
    clock, cell, _, sp200 = bench
    analyzer = SP200Impedance(sp200)
    analyzer.configure(amplitude_V=0.01, current_amplitude_A=1e-4)
    points = list(analyzer.sweep(log_frequencies(1e5, 10.0, 2), clock))
    assert len(points) == 9 and all(abs(z - cell.impedance(f)) < 0.02 * abs(cell.impedance(f)) for f, z in points)


def test_frequencies_the_sp200_cannot_sweep_are_refused_before_anything_runs(bench):
    clock, _, channel, sp200 = bench
    analyzer = SP200Impedance(sp200)
    analyzer.configure(amplitude_V=0.01)
    with pytest.raises(ValueError, match=r"up to 2e\+06 Hz"):
        next(analyzer.sweep([4e6, 2e6, 1e6], clock))
    with pytest.raises(ValueError, match="log-spaced"):
        next(analyzer.sweep([1e5, 1e4, 5e3], clock))
    assert not channel.running


def test_the_current_range_is_the_smallest_that_holds_the_current():
    assert current_range(2.83e-4) == tech.IRange.I_1mA and current_range(1e-3) == tech.IRange.I_1mA
    assert current_range(1.1e-3) == tech.IRange.I_10mA
    with pytest.raises(ValueError, match="1 A"):
        current_range(2.0)


def test_a_channel_that_stops_by_itself_ends_the_sweep_as_an_instrument_fault(bench):
    clock, _, channel, sp200 = bench
    analyzer = SP200Impedance(sp200)
    analyzer.configure(amplitude_V=0.01, at_open_circuit=True)
    sweep = analyzer.sweep(log_frequencies(1e3, 0.1, 5), clock)
    next(sweep)
    channel.stop()  # as if the instrument stopped the technique
    with pytest.raises(Exception, match="instrument fault, not the cell"):
        list(sweep)
    assert sp200.poll().State == State.STOP and math.isfinite(sp200.test_time_s)


def test_a_channel_that_stops_by_itself_during_a_test_is_an_instrument_fault(bench):
    clock, _, channel, sp200 = bench
    cycler = SP200Cycler(sp200)
    cycler.begin("t")
    cycler.apply_current(I_SET, max_voltage_V=1.0, min_voltage_V=-1.0, until_time_s=600.0)
    clock.wait(10.0)
    channel.stop()  # as the instrument would on an overload: not a segment's end
    with pytest.raises(EClibError, match="stopped by itself during the test .*instrument fault, not the cell"):
        cycler.read()
