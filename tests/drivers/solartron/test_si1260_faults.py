"""The 1260 driver against the emulator through the fault proxy (line framing): a result line has no checksum, so
a changed digit of Z' passes the wire (the procedure's neighbour check must catch it); a changed frequency is read
again from the 1260 (DO); a lost, cut, late or missing line is a SolartronError, never a raw socket error; and
closing the role ends a point in progress even after the connection was lost."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from labctl.drivers.solartron import si1260
from labctl.drivers.solartron.si1260 import Solartron1260, SolartronError, SolartronTimeout
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.si1260_server import Si1260Emulator

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[2] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

RESULT = rb"^[+-]\d\.\d{7}E[+-]\d\d,"  # a result line, not the answer to a query
MARGIN_S = 0.3  # the read margin of these tests (the driver's 5 s would make each lost line last 5 s)


class RCCell:
    """R ‖ C, noise-free: 100 ohm, 1 µF."""

    def impedance(self, frequency_Hz: float) -> complex:
        return 100.0 / (1 + 2j * math.pi * frequency_Hz * 100.0 * 1e-6)

    measured_impedance = impedance


@pytest.fixture
def bench(monkeypatch):
    """A stepped virtual clock, the emulated 1260 on it, a line proxy in front, the driver connected through it."""
    monkeypatch.setattr(si1260, "READ_MARGIN_S", MARGIN_S)
    clock = VirtualClock()
    with Si1260Emulator(clock, RCCell()) as emulator, \
            fault_proxy.FaultProxy(emulator.address, framing="line") as proxy:
        inst = Solartron1260(f"TCPIP::127.0.0.1::{proxy.port}::SOCKET", visa_library="@py", timeout=2000)
        try:
            inst.configure_potentiostatic(0.01)
            yield clock, emulator, proxy, inst
        finally:
            inst.adapter.close()


def measure(clock: VirtualClock, proxy, inst: Solartron1260, hz: float) -> complex:
    inst.trigger(hz)
    proxy.settle()  # the SI is at the emulator before its time passes
    clock.advance(inst.point_duration_s(hz))
    return inst.read_point(hz)


def test_a_changed_digit_of_z_passes_the_wire(bench):
    """Nothing on the wire tells it: the driver returns Z' with its leading digit changed."""
    clock, _, proxy, inst = bench
    proxy.inject("digit", pattern=RESULT, field=1, offset=0, shift=5)
    z = measure(clock, proxy, inst, 1000.0)
    assert proxy.injected == ["digit"]
    true = RCCell().impedance(1000.0)
    assert z.imag == pytest.approx(true.imag, rel=1e-4) and not z.real == pytest.approx(true.real, rel=0.1)


@pytest.mark.parametrize("offset", [0, 1, 8])  # the leading digit, the next one, the exponent's last digit
def test_a_changed_frequency_is_read_again_from_the_instrument(bench, offset, caplog):
    """The line looks like a stale point for another frequency and is dropped; no other line comes, so the driver
    asks DO and reads the point the 1260 holds (before: a SolartronError, and a lost point)."""
    clock, _, proxy, inst = bench
    proxy.inject("digit", pattern=RESULT, field=0, offset=offset, shift=5)
    z = measure(clock, proxy, inst, 1000.0)
    assert proxy.injected == ["digit"]
    assert z == pytest.approx(RCCell().impedance(1000.0), rel=1e-4)
    assert "changed on the way" in caplog.text


@pytest.mark.parametrize("kind, options, error", [
    ("drop", {}, SolartronError), ("cut", {}, SolartronError), ("silent", {}, SolartronTimeout),
    ("delay", {"seconds": 2.0}, SolartronTimeout),
])  # fmt: skip
def test_a_lost_or_missing_result_is_a_solartron_error(bench, kind, options, error):
    clock, _, proxy, inst = bench
    proxy.inject(kind, pattern=RESULT, **options)
    with pytest.raises(error, match="1260|1000 Hz"):
        measure(clock, proxy, inst, 1000.0)
    assert proxy.injected == [kind]


def test_closing_ends_a_point_in_progress_after_the_connection_was_lost(bench):
    """A 300 s point is under way when the gateway drops every connection: the first read fails, then closing the
    role reopens the connection and breaks the point (BK), so the generator no longer drives the cell."""
    _, emulator, proxy, inst = bench
    inst.trigger(0.01)
    proxy.settle()
    proxy.sever()
    with pytest.raises(SolartronError):  # a timeout: pyvisa-py reads a closed socket as silence
        inst.check_errors()
    assert emulator._pending is not None
    inst.analyzer().close()
    assert emulator._pending is None


def test_closing_with_no_point_in_progress_sends_nothing(bench):
    clock, _, proxy, inst = bench
    measure(clock, proxy, inst, 1000.0)
    proxy.sever()
    inst.analyzer().close()  # no BK to send, so no reconnection either, and no error
