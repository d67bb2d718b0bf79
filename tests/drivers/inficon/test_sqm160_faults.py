"""The SQM-160 role against the emulator through a serial fault relay (a pseudo-terminal pair in a thread): a
corrupted reply fails its CRC and is refused, then the operation is sent again; a lost reply is a timeout and is
sent again; a monitor that stops answering is an SQMTimeout after three sends, never a reading."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from labctl.drivers.inficon.sqm160 import ATTEMPTS, SQM160, SQMChecksumError, SQMTimeout
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.sqm160 import MonitorSetup, SQM160Emulator

_spec = importlib.util.spec_from_file_location("fault_proxy", Path(__file__).parents[2] / "fault_proxy.py")
fault_proxy = sys.modules.setdefault("fault_proxy", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fault_proxy)

TIMEOUT_MS = 300  # the read timeout of these tests: far above the emulator's reply time


@pytest.fixture
def relay():
    emulator = SQM160Emulator(VirtualClock(), MonitorSetup(seed=3))
    with fault_proxy.SerialFaultRelay(emulator.port) as r:
        sqm = SQM160(f"ASRL{r.port}::INSTR", visa_library="@py", timeout=TIMEOUT_MS)
        try:
            yield r, sqm.monitor(sensor=1)
        finally:
            sqm.adapter.close()
            emulator.close()


def test_a_clean_line_reads_the_crystal(relay):
    r, monitor = relay
    assert monitor.read().frequency_Hz > 5e6 and r.injected == []


@pytest.mark.parametrize("kind", ["garble", "drop"])
def test_one_bad_reply_is_refused_and_the_reading_taken_again(relay, kind, caplog):
    r, monitor = relay
    clean = monitor.read()
    r.inject(kind)
    with caplog.at_level(logging.WARNING):
        again = monitor.read()
    assert r.injected == [kind]
    assert again.frequency_Hz == pytest.approx(clean.frequency_Hz, abs=1.0)
    assert ("CRC" if kind == "garble" else "no reply") in caplog.text and "trying again" in caplog.text


def test_a_garbled_reply_to_a_setting_is_sent_again(relay):
    r, monitor = relay
    r.inject("garble")
    monitor.close_shutter()
    assert r.injected == ["garble"]


def test_a_reply_garbled_every_time_is_an_error_after_three_sends(relay):
    r, monitor = relay
    r.inject("garble", count=ATTEMPTS * 4)  # a reading asks 4 things; every reply of all three tries garbled
    with pytest.raises(SQMChecksumError, match=f"reading the sensor failed {ATTEMPTS} times"):
        monitor.read()


def test_a_monitor_that_stops_answering_is_a_timeout_after_three_sends(relay):
    r, monitor = relay
    r.inject("silent")
    with pytest.raises(SQMTimeout, match=f"failed {ATTEMPTS} times.*no reply"):
        monitor.read()
    assert r.injected == ["silent"]
