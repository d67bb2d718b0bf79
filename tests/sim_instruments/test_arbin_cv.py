"""Constant voltage on the emulated Arbin: step 3 of the universal schedule, end to end over TCP.

Meta-variables are written with hand-built SET_MV frames (meta codes MV_UD1..4 = 52..55, MV_UD5..16 = 105..116,
ArbinCTI_Protocol v1.1); records are read with the protocol document's offsets (conftest.py).
"""

from __future__ import annotations

import logging
import struct

import pytest

from labctl.sim_instruments.cells import SymmetricCell

SET_MV, SET_MV_FB = 0xBB150001, 0xBB510001
META = {1: 52, 2: 53, 5: 105, 7: 107, 8: 108}
CHARGE, DISCHARGE, REST, UNSAFE = 2, 3, 4, 8
UNIVERSAL = "labctl_universal.sdx"


class CapacitorCell:
    """A blocking electrode: capacitance ``c_F`` behind resistance ``r_ohm``, V = q/C + I·R. A held voltage draws
    I = (V - q/C)/R, which decays with time constant R·C; the measured voltage is the noise-free one."""

    def __init__(self, r_ohm: float = 100.0, c_F: float = 1.0) -> None:
        self.r_ohm, self.c_F = r_ohm, c_F
        self.q_C = 0.0

    def advance(self, current_A: float, dt_s: float) -> None:
        self.q_C += current_A * dt_s

    def voltage(self, current_A: float) -> float:
        return self.q_C / self.c_F + current_A * self.r_ohm

    def measured_voltage(self, current_A: float) -> float:
        return self.voltage(current_A)

    def current_at(self, voltage_V: float) -> float:
        return (voltage_V - self.q_C / self.c_F) / self.r_ohm


def f32(x: float) -> float:
    """What a meta-variable holds: MVs are 32-bit floats on the wire."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def set_mv(cti, channel: int, index: int, value: float) -> None:
    reply = cti.ask(SET_MV, cti.set_mv_args(channel, META[index], value))
    assert cti.result(reply, SET_MV_FB) == 0


def hold(cti, channel: int, voltage_V: float, clamp_A: float, *, time_s: float = 0.0, current_low_A: float = 0.0):
    """The driver's order for a hold: MV_UD1 = 0, MV_UD2 (clamp), MV_UD5, MV_UD7 (voltage), MV_UD8, MV_UD1 = 2."""
    for index, value in ((1, 0.0), (2, clamp_A), (5, time_s), (7, voltage_V), (8, current_low_A), (1, 2.0)):
        set_mv(cti, channel, index, value)


@pytest.fixture
def bench(make_emulator, connect):
    """``bench(cells)``: an emulator with ``cells`` (channel -> cell), logged in, universal schedule running on
    every channel that has a cell."""

    def make(cells: dict[int, object]):
        emulator = make_emulator(cells)
        cti = connect(emulator.address)
        assert cti.login() == 1
        for number in cells:
            assert cti.assign(number - 1, UNIVERSAL) == 0 and cti.start("cv", [number - 1]) == 0
        return cti

    return make


def one(cti, channel: int = 0) -> dict:
    (record,) = cti.info(channel)
    return record


def test_hold_passes_the_current_the_cell_draws_at_the_setpoint(bench, clock):
    """Every substep passes current_at(setpoint) of the cell's state at its start; the counters integrate it."""
    cti = bench({1: SymmetricCell("bare", seed=3), 2: SymmetricCell("bare", seed=3)})
    hold(cti, 0, 0.05, 0.01, time_s=600.0)
    hold(cti, 1, -0.05, 0.01, time_s=600.0)
    twin = SymmetricCell("bare", seed=3)
    current, q_Ah = twin.current_at(f32(0.05)), 0.0
    first = current
    assert clock.advance(100) == (100.0, False)
    for _ in range(100):  # the clock's 1 s substeps, replayed on a twin
        twin.advance(current, 1.0)
        q_Ah += current / 3600
        current = twin.current_at(f32(0.05))
    up, down = one(cti, 0), one(cti, 1)
    assert (up["status"], up["step_and_cycle"], down["status"]) == (CHARGE, "Step 3 Cycle 1", DISCHARGE)
    assert up["current"] == pytest.approx(current, rel=1e-6) and down["current"] == pytest.approx(-current, rel=1e-6)
    assert current > 1.2 * first  # the 10 mV nucleation overpotential fades as charge passes
    assert up["charge_ah"] == pytest.approx(q_Ah, rel=1e-6) and up["discharge_ah"] == 0.0
    assert down["discharge_ah"] == pytest.approx(q_Ah, rel=1e-6) and down["charge_ah"] == 0.0
    assert up["voltage"] == pytest.approx(0.05, abs=2e-3)  # measured: 0.3 mV rms noise


def test_hold_ends_exactly_at_its_time_limit(bench, clock):
    cti = bench({1: SymmetricCell("Ag", seed=1)})
    hold(cti, 0, 0.05, 0.01, time_s=24.5)
    assert clock.advance(60) == (pytest.approx(24.5), True)  # between 1 s substeps
    record = one(cti)
    assert (record["status"], record["step_and_cycle"]) == (REST, "Step 4 Cycle 1")
    assert record["exit_condition"] == "StepTime>=Limit"
    assert record["test_time"] == pytest.approx(24.5) and record["current"] == 0.0


def test_hold_ends_when_the_current_decays_to_its_limit(bench, clock):
    """1 mA into R·C = 100 s decays by 1 % per 1 s substep: the first substep end at or below 0.1 mA ends it."""
    cell = CapacitorCell(r_ohm=100.0, c_F=1.0)
    cti = bench({1: cell})
    hold(cti, 0, 0.1, 0.01, time_s=3600.0, current_low_A=1e-4)
    assert one(cti)["current"] == pytest.approx(1e-3, rel=1e-6)
    current, substeps = f32(0.1) / 100.0, 0
    while current > f32(1e-4):
        current *= 1 - 1.0 / 100.0
        substeps += 1
    assert clock.advance(1000) == (pytest.approx(substeps), True)  # 230 s, near 100 s · ln 10
    record = one(cti)
    assert (record["status"], record["step_and_cycle"]) == (REST, "Step 4 Cycle 1")
    assert record["exit_condition"] == "Current<=Limit"
    assert record["charge_ah"] == pytest.approx(cell.q_C / 3600, rel=1e-6)


def test_clamped_hold_passes_the_clamp_while_the_voltage_sags(bench, clock):
    """A 1 V hold on 100 ohm + 1 F wants 10 mA; clamped at 2 mA it charges at 2 mA (V = q/C + 0.2 V) until V
    reaches 1 V at q = 0.8 C (400 s), then holds 1 V while the current decays."""
    cells = {1: CapacitorCell(), 2: CapacitorCell()}
    cti = bench(cells)
    hold(cti, 0, 1.0, 0.002, time_s=3600.0)
    hold(cti, 1, -1.0, 0.002, time_s=3600.0)
    up, down = one(cti, 0), one(cti, 1)
    assert (up["status"], up["current"], up["voltage"]) == (CHARGE, pytest.approx(0.002), pytest.approx(0.2))
    assert (down["status"], down["current"]) == (DISCHARGE, pytest.approx(-0.002))
    clock.advance(300)
    assert one(cti, 0)["current"] == pytest.approx(0.002) and one(cti, 0)["voltage"] == pytest.approx(0.8)
    clock.advance(200)
    up = one(cti, 0)
    assert 0 < up["current"] < 0.002 and up["voltage"] == pytest.approx(1.0, rel=1e-6)
    assert cells[2].q_C == pytest.approx(-cells[1].q_C)


def test_a_new_setpoint_applies_at_once(bench, clock):
    cell = CapacitorCell()
    cti = bench({1: cell})
    hold(cti, 0, 0.1, 0.01)
    clock.advance(10)
    set_mv(cti, 0, 7, 0.3)
    record = one(cti)
    assert record["current"] == pytest.approx(cell.current_at(f32(0.3)), rel=1e-6)
    assert record["test_time"] == 10.0 and record["step_and_cycle"] == "Step 3 Cycle 1"


def test_a_cell_that_cannot_hold_a_voltage_makes_the_channel_unsafe(bench, clock, linear_cell, caplog):
    """No current_at: never a silent zero current. The channel goes Unsafe and says why."""
    cti = bench({1: linear_cell(e=0.1)})
    with caplog.at_level(logging.ERROR, logger="labctl.sim_instruments.arbin_channel"):
        hold(cti, 0, 0.2, 0.01, time_s=60.0)
    record = one(cti)
    assert (record["status"], record["current"], record["exit_condition"]) == (UNSAFE, 0.0, "CV:CellHasNoCurrentAt")
    assert "LinearCell" in caplog.text and "current_at" in caplog.text
    assert clock.advance(60) == (60.0, False)
    assert one(cti)["test_time"] == 0.0


def test_constant_current_then_hold_then_rest(bench, clock):
    """+1 mA for 50 s charges 1 F to 50 mV; a 20 mV hold then discharges it (from -0.3 mA) for 100 s; rest."""
    cell = CapacitorCell(r_ohm=100.0, c_F=1.0)
    cti = bench({1: cell})
    cti.segment(0, 0.001, time_s=50.0)
    assert clock.advance(1000) == (50.0, True)
    assert one(cti)["charge_ah"] == pytest.approx(0.05 / 3600, rel=1e-6)

    hold(cti, 0, 0.02, 0.01, time_s=100.0)
    record = one(cti)
    assert (record["status"], record["current"]) == (DISCHARGE, pytest.approx((0.02 - 0.05) / 100, rel=1e-6))
    assert clock.advance(1000) == (150.0, True)
    record = one(cti)
    assert (record["step_and_cycle"], record["current"]) == ("Step 4 Cycle 1", 0.0)
    assert record["exit_condition"] == "StepTime>=Limit"
    assert record["charge_ah"] == pytest.approx(0.05 / 3600, rel=1e-6)
    assert record["discharge_ah"] == pytest.approx((0.05 - cell.q_C) / 3600, rel=1e-6)
    assert 0.02 < cell.q_C < 0.05  # relaxed toward 20 mV · 1 F with R·C = 100 s

    set_mv(cti, 0, 1, 0.0)
    assert one(cti)["step_and_cycle"] == "Step 1 Cycle 1"
    assert clock.advance(10) == (160.0, False)
    record = one(cti)
    assert (record["status"], record["current"], record["test_time"]) == (REST, 0.0, 160.0)
    assert record["discharge_ah"] == pytest.approx((0.05 - cell.q_C) / 3600, rel=1e-6)
