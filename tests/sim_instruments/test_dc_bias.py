"""The 1260 emulator's DC bias drives current through the virtual cell: none at its open-circuit voltage, a large
one at a wrong bias, and the cell's state moves once, however many instruments integrate the same seconds."""

from __future__ import annotations

import logging
import math
import socket

import pytest

from labctl.sim_instruments.anode_free import AnodeFreeCell
from labctl.sim_instruments.cell import BiasedCell
from labctl.sim_instruments.cells import SymmetricCell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.collector_cell import CollectorCell
from labctl.sim_instruments.full_cell import FullCell
from labctl.sim_instruments.si1260_server import Si1260Emulator

AREA = math.pi * 0.6**2
SECONDS = 60.0  # one long measurement


def charged_lco() -> FullCell:
    """An LCO|Ag|Li full cell charged for an hour at 1 mA: open-circuit voltage near 4 V."""
    cell = FullCell("LCO|Ag|Li", area_cm2=AREA)
    cell.advance(1e-3, 3600.0)
    cell.advance(0.0, 600.0)
    return cell


def measure_once(cell: FullCell, bias_V: float) -> Si1260Emulator:
    """One SI of ``SECONDS`` at ``bias_V`` on a bench with no cycler (only the analyzer moves the cell)."""
    clock = VirtualClock()
    analyzer = Si1260Emulator(clock, cell)
    with socket.create_connection(analyzer.address, timeout=5) as sock:
        sock.sendall(f"TT2\r\nOP2,1\r\nVA 0.01\r\nVB {bias_V:.6f}\r\nIS {SECONDS}\r\nFR 1000\r\n*ESR?\r\n".encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(4096)
        assert reply == b"0\r\n"  # every command accepted; the 1260 answers nothing during a point, so ask first
        sock.sendall(b"SI\r\n")  # a connection that was answered is read before the clock moves
        clock.advance(SECONDS)
        assert analyzer.last_result is not None
    analyzer.close()
    return analyzer


@pytest.mark.parametrize("cell", [
    SymmetricCell("bare", area_cm2=AREA), AnodeFreeCell("Cu", area_cm2=AREA),
    FullCell("NMC|Cu", area_cm2=AREA), CollectorCell("Cu|Cu", area_cm2=AREA),
], ids=lambda c: type(c).__name__)  # fmt: skip
def test_every_simulated_cell_has_a_dc_path(cell):
    assert isinstance(cell, BiasedCell)
    assert cell.hold_bias(cell.voltage(0.0)) == pytest.approx(0.0, abs=1e-9)  # at its open-circuit voltage
    cell.hold_bias(None)


def test_a_wrong_bias_discharges_a_full_cell_and_its_open_circuit_voltage_does_not():
    wrong, right = charged_lco(), charged_lco()
    x0, ocv = wrong.cathode_lithium_fraction, wrong.open_circuit_voltage
    assert ocv > 3.8
    at_zero = measure_once(wrong, 0.0)
    measure_once(right, right.voltage(0.0))
    # 0 V on a ≈4 V cell: tens of mA of discharge for a minute fill the cathode back with lithium
    assert wrong.cathode_lithium_fraction - x0 > 1e-3
    assert wrong.open_circuit_voltage < ocv - 0.01
    assert at_zero.dc_current_A == 0.0  # let go once the result is in
    assert right.cathode_lithium_fraction == pytest.approx(x0, abs=1e-6)
    assert right.open_circuit_voltage == pytest.approx(ocv, abs=1e-4)


def test_a_dc_current_beyond_the_current_input_is_logged_as_an_overload(caplog):
    with caplog.at_level(logging.WARNING, logger="labctl.sim_instruments.si1260_server"):
        measure_once(charged_lco(), 0.0)
    assert any("overload" in r.getMessage() and "mA" in r.getMessage() for r in caplog.records)


def test_seconds_a_running_channel_and_the_analyzer_both_integrate_count_once():
    alone, shared = charged_lco(), charged_lco()
    for cell in (alone, shared):
        cell.hold_bias(3.5)
    for _ in range(30):  # a bench substep: the running channel (resting) and the measurement each advance
        shared.advance(0.0, 1.0)
        shared.pass_bias(1.0)
        alone.pass_bias(1.0)
    assert shared.cathode_lithium_fraction == pytest.approx(alone.cathode_lithium_fraction, rel=1e-12)
    assert shared.cathode_lithium_fraction > charged_lco().cathode_lithium_fraction + 1e-4


def test_an_idle_channel_catching_up_later_skips_the_seconds_the_analyzer_integrated():
    idle, running = charged_lco(), charged_lco()
    for cell in (idle, running):
        cell.hold_bias(3.5)
    for _ in range(30):  # a 30 s measurement: only the analyzer moves the idle channel's cell, ...
        idle.pass_bias(1.0)
        running.advance(0.0, 1.0)  # ... a running channel moves its own as it goes
        running.pass_bias(1.0)
    for cell in (idle, running):
        cell.hold_bias(None)
    for _ in range(40):  # the idle channel's lazy rest over the 30 s measured plus 10 s after them
        idle.advance(0.0, 1.0)
    for _ in range(10):
        running.advance(0.0, 1.0)
    assert idle.cathode_lithium_fraction == pytest.approx(running.cathode_lithium_fraction, rel=1e-12)
    assert idle.surface_lithium_fraction == pytest.approx(running.surface_lithium_fraction, rel=1e-9)
    assert idle.cathode_lithium_fraction > charged_lco().cathode_lithium_fraction + 1e-4
