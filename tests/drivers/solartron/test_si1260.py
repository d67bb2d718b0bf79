"""Solartron1260 against recorded command/reply transcripts (``pymeasure.test.expected_protocol``).

Where the bytes come from: research/instruments.md §2.2 (IEEE 488.2 commands: *IDN?, *CLS, *ESR?), §2.3 (the
1260 command table: mnemonics, argument ranges, ``OP2,1``, ``CZ``, ``RA``, ``SO``...; exponent style §2.10),
§2.4 (result line ``F, a, b, error, limits`` and the stale-point check), §2.5 (recipes: TT2 first), and the
wire contract of issue 3 (ranges, event status bits 32/16, timing MS + max(IS, 3/FR)). Terminators (CR LF) are
left out of transcripts, as expected_protocol does; one test checks them on a real socket.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import warnings
from contextlib import contextmanager
from unittest.mock import PropertyMock, call

import pytest
from pymeasure.adapters import ProtocolAdapter
from pymeasure.test import expected_protocol
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from labctl.drivers.solartron.si1260 import (
    Solartron1260,
    Solartron1260Analyzer,
    SolartronError,
    SolartronTimeout,
    number,
)
from labctl.roles import ImpedanceAnalyzer
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.si1260_server import Si1260Emulator

IDN = "1260 IMPEDANCE ANALYZER, SOLARTRON, 0, 0"
TIMEOUT = "<no reply: the VISA read times out>"
LOST = "<no reply: the connection is lost>"
BAD_NUMBERS = [math.nan, math.inf, True, "1", None]
# The manual's result record (GPIB chapter 2.4.2): frequency in 14 characters (8 digits), the two parameters in
# 11 (5 digits), a one-digit error code and a two-character limits code, comma-separated: 43 characters.
MANUAL_RECORD = re.compile(r"[+-]\d\.\d{7}E[+-]\d\d(,[+-]\d\.\d{4}E[+-]\d\d){2},\d,(00|[+-]1)")


class _TimingOutAdapter(ProtocolAdapter):
    """A ProtocolAdapter whose TIMEOUT and LOST replies raise PyVISA's errors instead of being read."""

    def _read(self, **kwargs):
        reply = super()._read(**kwargs)
        if reply == TIMEOUT:
            raise VisaIOError(StatusCode.error_timeout)
        if reply == LOST:
            raise VisaIOError(StatusCode.error_connection_lost)
        return reply


@contextmanager
def replay(transcript):
    """expected_protocol for transcripts in which a read times out."""
    adapter = _TimingOutAdapter(transcript)
    yield Solartron1260(adapter)
    assert adapter._index == len(transcript), f"unprocessed: {transcript[adapter._index:]}"
    assert adapter._read_buffer is None and adapter._write_buffer is None


def configured(amplitude="0.01", bias="0", integration="0.1",
               delay="0", esr="0"):
    """configure_potentiostatic's transcript: reset, known state, values, then *ESR?."""
    return [
        ("TT2", None), ("*IDN?", IDN), ("*CLS", None),
        ("OS0", None), ("OT0", None), ("OP2,1", None), ("RH0", None), ("SW0", None), ("AU0", None),
        ("GT0", None), ("SO1,3", None), ("CZ0", None), ("UW0", None),
        ("RA1,0", None), ("RA3,0", None), ("DC1,0", None), ("DC3,0", None),
        (f"VA {amplitude}", None), (f"VB {bias}", None), (f"IS {integration}", None), (f"MS {delay}", None),
        ("*ESR?", esr),
    ]


# Reading needs the coordinates, integration time and delay: set here through the properties.
TIMING = [("IS 0.1", None), ("MS 0", None)]


def ready(inst, coordinates="rectangular"):
    inst.coordinates = coordinates
    inst.integration_time = 0.1
    inst.measurement_delay = 0.0


# --- construction ---

def test_init_is_not_scpi():
    """§1.2: on PyMeasure 0.16 a non-SCPI driver passes includeSCPI=False (else a FutureWarning and SCPI extras)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with expected_protocol(Solartron1260, []) as inst:
            assert inst.name == "Solartron 1260 impedance analyzer"
            assert inst.SCPI is False


def test_init_terminations_on_the_wire():
    """§2.1: commands end with CR LF and so do replies; through PyVISA (pyvisa-py) on a real local socket."""
    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def answer_once():
        conn, _ = server.accept()
        with conn:
            data = b""
            while not data.endswith(b"\r\n"):
                data += conn.recv(64)
            received.append(data)
            conn.sendall(IDN.encode() + b"\r\n")
            conn.recv(64)  # until the driver closes

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    inst = Solartron1260(f"TCPIP::127.0.0.1::{port}::SOCKET", visa_library="@py")
    try:
        assert inst.id == IDN
        assert inst.adapter.connection.timeout == 20_000
    finally:
        inst.adapter.close()
        thread.join(5)
        server.close()
    assert received == [b"*IDN?\r\n"]


# --- properties ---

def test_id():
    """§2.1-2.2: *IDN? answers "1260 IMPEDANCE ANALYZER, SOLARTRON, 0, 0" on a 1260A."""
    with expected_protocol(Solartron1260, [("*IDN?", IDN)]) as inst:
        assert inst.id == IDN


@pytest.mark.parametrize("hz, sent", [(1000, "FR 1000"), (10e-6, "FR 1E-5"),
                                      (32e6, "FR 32000000"), (0.1, "FR 0.1")])
def test_frequency(hz, sent):
    """§2.3 FR, 10 µHz .. 32 MHz; mantissa and upper-case signed exponent (§2.10: the 1260 rejects 'e+03')."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.frequency = hz


@pytest.mark.parametrize("value, text", [
    (1000, "1000"), (0.1, "0.1"), (32e6, "32000000"), (10e-6, "1E-5"), (0.005, "0.005"), (-40.95, "-40.95"),
    (40.95, "40.95"), (0, "0"), (-0.0, "0"), (1e5, "100000"), (2.5e-5, "2.5E-5"), (1e-4, "0.0001"),
    (25.118864315095795, "25.118864"), (1258.9254117941673, "1258.9254"), (0.012589254117941675, "0.012589254"),
])  # fmt: skip
def test_number(value, text):
    """Issue 14: plain decimals, or one upper-case E with a one-digit exponent; never 'E+03' or 'e-05'."""
    assert number(value) == text


def test_number_round_trips_to_the_8_digits_the_1260_takes():
    """Every frequency of 40 points per decade over 10 µHz .. 32 MHz, and biases over ±40.95 V."""
    values = [10 ** (k / 40) for k in range(-200, 301)] + [k * 0.0123 - 40.95 for k in range(6659)]
    for value in values:
        text = number(value)
        assert re.fullmatch(r"-?\d+(\.\d+)?(E-?\d)?", text), text
        assert float(text) == float(f"{value:.8g}"), (value, text)


@pytest.mark.parametrize("hz", [9e-6, 32.1e6, 0, -1000, *BAD_NUMBERS])
def test_frequency_refuses(hz):
    """§2.3 FR range; refused before anything is sent, never clipped."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="frequency"):
        inst.frequency = hz


@pytest.mark.parametrize("volts, sent", [(0.01, "VA 0.01"), (3, "VA 3"), (0, "VA 0")])
def test_ac_amplitude(volts, sent):
    """§2.3 VA, V rms 0 .. 3; the driver remembers it (the 1260 cannot be asked)."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        assert inst.ac_amplitude is None
        inst.ac_amplitude = volts
        assert inst.ac_amplitude == volts


@pytest.mark.parametrize("volts", [-0.001, 3.01, *BAD_NUMBERS])
def test_ac_amplitude_refuses(volts):
    """§2.3 VA range."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="ac_amplitude"):
        inst.ac_amplitude = volts
    assert inst.ac_amplitude is None


@pytest.mark.parametrize("volts, sent", [(-40.95, "VB -40.95"), (40.95, "VB 40.95"),
                                         (0.25, "VB 0.25"), (-0.0, "VB 0")])
def test_dc_bias(volts, sent):
    """§2.3 VB, ±40.95 V."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.dc_bias = volts


@pytest.mark.parametrize("volts", [-41, 40.96, *BAD_NUMBERS])
def test_dc_bias_refuses(volts):
    """§2.3 VB range."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="dc_bias"):
        inst.dc_bias = volts


@pytest.mark.parametrize("seconds, sent", [(0.01, "IS 0.01"), (1, "IS 1"),
                                           (1e5, "IS 100000")])
def test_integration_time(seconds, sent):
    """§2.3 IS (e.g. ``IS 1``, ``IS 2.0E-1``); contract range 0.01 .. 1e5 s."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.integration_time = seconds
        assert inst.integration_time == seconds


@pytest.mark.parametrize("seconds", [0.001, 0, 1.1e5, *BAD_NUMBERS])
def test_integration_time_refuses(seconds):
    """Contract IS range."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="integration_time"):
        inst.integration_time = seconds


@pytest.mark.parametrize("seconds, sent", [(0, "MS 0"), (2.5, "MS 2.5")])
def test_measurement_delay(seconds, sent):
    """§2.3 MS, measurement (settling) delay; contract range 0 .. 1e5 s."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.measurement_delay = seconds
        assert inst.measurement_delay == seconds


@pytest.mark.parametrize("seconds", [-0.1, 1.1e5, *BAD_NUMBERS])
def test_measurement_delay_refuses(seconds):
    """Contract MS range."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="measurement_delay"):
        inst.measurement_delay = seconds


@pytest.mark.parametrize("name, sent", [("rectangular", "CZ0"), ("polar", "CZ1")])
def test_coordinates(name, sent):
    """§2.3 CZ: 0 rectangular (Z', Z''), 1 polar (|Z|, phase)."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.coordinates = name
        assert inst.coordinates == name


@pytest.mark.parametrize("name", ["cartesian", "Polar", 0, 1, True, None, ["polar"]])
def test_coordinates_refuses(name):
    """§2.3 CZ takes 0 or 1, offered by name only."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="coordinates"):
        inst.coordinates = name


@pytest.mark.parametrize("ratio, sent", [("V1/I", "SO1,3"), ("V2/I", "SO2,3"), ("V1/V2", "SO1,2"),
                                         ("V2/V1", "SO2,1")])
def test_source(ratio, sent):
    """§2.3 SO a,b with 1 = V1, 2 = V2, 3 = I (SO1,3 is the two-terminal impedance)."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.source = ratio


@pytest.mark.parametrize("ratio", ["I/V1", "v1/i", (1, 3), "1,3"])
def test_source_refuses(ratio):
    """§2.3 SO: only the listed ratios."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="source"):
        inst.source = ratio


def test_generator():
    """§2.3 GT0, the voltage generator."""
    with expected_protocol(Solartron1260, [("GT0", None)]) as inst:
        inst.generator = "voltage"


@pytest.mark.parametrize("kind", ["current", 0, "Voltage"])
def test_generator_refuses(kind):
    """GT1 (current generator) is not driven by labctl (no IA/IB); the emulator refuses it too."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="generator"):
        inst.generator = kind


@pytest.mark.parametrize("channel, full_scale, sent", [("input_v1", "auto", "RA1,0"), ("input_v1", 0.03, "RA1,1"),
                                                       ("input_v2", 0.3, "RA2,2"), ("input_v1", 3, "RA1,3")])
def test_voltage_range(channel, full_scale, sent):
    """§2.3 RA ch,r for V1/V2: 0 auto, 1 = 30 mV, 2 = 300 mV, 3 = 3 V."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        getattr(inst, channel).voltage_range = full_scale


@pytest.mark.parametrize("full_scale", [1, 30, 0.003, "AUTO", True, None])
def test_voltage_range_refuses(full_scale):
    """§2.3 RA: only the four ranges (1 would be a range code, not a full scale)."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="voltage_range"):
        inst.input_v1.voltage_range = full_scale


@pytest.mark.parametrize("full_scale, sent", [("auto", "RA3,0"), (6e-6, "RA3,1"), (60e-6, "RA3,2"),
                                              (600e-6, "RA3,3"), (6e-3, "RA3,4"), (60e-3, "RA3,5")])
def test_current_range(full_scale, sent):
    """§2.3 RA 3,r for the current input: 0 auto, 1 = 6 µA ... 5 = 60 mA."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        inst.input_i.current_range = full_scale


@pytest.mark.parametrize("full_scale", [0.1, 1e-3, 5, "6 mA", True])
def test_current_range_refuses(full_scale):
    """§2.3 RA 3,r: only the six ranges."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="current_range"):
        inst.input_i.current_range = full_scale


@pytest.mark.parametrize("channel, mode, sent", [("input_v1", "DC", "DC1,0"), ("input_v2", "AC", "DC2,1"),
                                                 ("input_i", "DC", "DC3,0")])
def test_coupling(channel, mode, sent):
    """§2.3 DC ch,n: 0 = DC (recommended), 1 = AC; channel 3 is the current input."""
    with expected_protocol(Solartron1260, [(sent, None)]) as inst:
        getattr(inst, channel).coupling = mode


@pytest.mark.parametrize("mode", ["dc", 0, "GND"])
def test_coupling_refuses(mode):
    """§2.3 DC: DC or AC only."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="coupling"):
        inst.input_i.coupling = mode


# --- reset and errors ---

def test_reset():
    """§2.3 TT2 resets to power-on defaults; readiness by *IDN? (§2.1). Remembered settings are forgotten."""
    with expected_protocol(Solartron1260, [("CZ1", None), ("TT2", None), ("*IDN?", IDN)]) as inst:
        inst.coordinates = "polar"
        inst.reset()
        assert inst.coordinates is None


def test_reset_drops_queued_results(caplog):
    """§2.4: a result left queued by an aborted point would answer the next query; reset reads past it."""
    stale = "+1.0000000E+01,+1.0000E+02,-5.0000E+01,0,00"
    with expected_protocol(Solartron1260, [("TT2", None), ("*IDN?", stale), (None, IDN)]) as inst:
        inst.reset()
    assert "dropped the result line" in caplog.text


def test_reset_waits_for_the_instrument():
    """§2.3: the 1260 takes seconds to reset; a query that times out meanwhile is asked again."""
    with replay([("TT2", None), ("*IDN?", TIMEOUT), ("*IDN?", IDN)]) as inst:
        inst.reset()


def test_reset_gives_up():
    """No answer in three tries: the error says what to check."""
    with replay([("TT2", None)] + [("*IDN?", TIMEOUT)] * 3) as inst, pytest.raises(SolartronError, match="GPIB"):
        inst.reset()


def test_reset_refuses_another_instrument():
    """§2.1: the GPIB address is configurable; a wrong one reaches some other instrument."""
    transcript = [("TT2", None), ("*IDN?", "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234567,C30")]
    with expected_protocol(Solartron1260, transcript) as inst, pytest.raises(SolartronError, match="GPIB address"):
        inst.reset()


def test_clear_errors():
    """§2.2 *CLS clears the event status register; earlier commands are no longer blamed."""
    transcript = [("ZZ", None), ("*CLS", None), ("SO1,2", None), ("*ESR?", "16")]
    with expected_protocol(Solartron1260, transcript) as inst:
        inst.write("ZZ")
        inst.clear_errors()
        inst.source = "V1/V2"
        with pytest.raises(SolartronError) as error:
            inst.check_errors()
    assert "SO1,2" in str(error.value) and "ZZ" not in str(error.value)


def test_check_errors_clean():
    """§2.2 *ESR? reads and clears the register; 0 means nothing was refused."""
    with expected_protocol(Solartron1260, [("*ESR?", "0")]) as inst:
        assert inst.check_errors() == []


def test_check_errors_command_error():
    """Contract: an unknown mnemonic sets bit 32 (command error); the error names the command."""
    with expected_protocol(Solartron1260, [("QQ1", None), ("*ESR?", "32")]) as inst:
        inst.write("QQ1")
        with pytest.raises(SolartronError, match=r"command error \(bit 32.*QQ1"):
            inst.check_errors()


def test_check_errors_execution_error():
    """Contract: SO1,2 gives no impedance on the emulator: bit 16 (execution error), naming SO1,2."""
    with expected_protocol(Solartron1260, [("SO1,2", None), ("*ESR?", "16")]) as inst:
        inst.source = "V1/V2"
        with pytest.raises(SolartronError, match=r"execution error \(bit 16.*SO1,2"):
            inst.check_errors()


def test_check_errors_both_bits():
    """Bits 32 and 16 together (48): both named."""
    with expected_protocol(Solartron1260, [("*ESR?", "48")]) as inst, \
            pytest.raises(SolartronError, match="command error.*and.*execution error"):
        inst.check_errors()


def test_check_errors_names_only_commands_since_the_last_check():
    """*ESR? clears the register, so a later error belongs to later commands only."""
    transcript = [("GT0", None), ("*ESR?", "0"), ("SO1,2", None), ("*ESR?", "16")]
    with expected_protocol(Solartron1260, transcript) as inst:
        inst.generator = "voltage"
        inst.check_errors()
        inst.source = "V1/V2"
        with pytest.raises(SolartronError) as error:
            inst.check_errors()
    assert "SO1,2" in str(error.value) and "GT0" not in str(error.value)


def test_check_errors_other_bits_are_reported_not_raised(caplog):
    """IEEE 488.2 bits 4 (query error) and 8 (device-dependent error) are logged and returned."""
    with expected_protocol(Solartron1260, [("*ESR?", "12")]) as inst:
        noted = inst.check_errors()
    assert [n.split(" (")[0] for n in noted] == ["a device-dependent error", "a query error"]
    assert "query error" in caplog.text


def test_check_errors_unreadable_reply():
    """A reply that is neither the register nor a result is reported, quoted."""
    with expected_protocol(Solartron1260, [("*ESR?", "READY")]) as inst, \
            pytest.raises(SolartronError, match="'READY'"):
        inst.check_errors()


def test_check_errors_no_answer_is_a_solartron_error():
    """Issue 14: a query that outlives the VISA timeout (a point still measured) is a SolartronError (a
    SolartronTimeout), never a raw VisaIOError."""
    with replay([("*ESR?", TIMEOUT)]) as inst, pytest.raises(SolartronTimeout, match=r"within 20 s .*\*ESR\?"):
        inst.check_errors()


def test_a_lost_connection_is_a_solartron_error():
    """Any other VISA error is a SolartronError naming what was under way."""
    with replay([("*IDN?", LOST)]) as inst, pytest.raises(SolartronError, match="VISA error while waiting .*IDN"):
        inst.analyzer().identity()


def test_check_errors_drops_a_stale_result_queued_before_the_register(caplog):
    """§2.4: a result still queued from an earlier point comes before the *ESR? answer; it is dropped."""
    transcript = [("*ESR?", "+1.0000000E+03,+1.0000E+02,-1.0000E+01,0,00"), (None, "0")]
    with expected_protocol(Solartron1260, transcript) as inst, caplog.at_level(logging.WARNING):
        assert inst.check_errors() == []
    assert "stale point" in caplog.text


# --- spectrum set-up and points ---

def test_configure_potentiostatic():
    """§2.5 recipes, made complete: TT2, *CLS, output format and routing (OS0 OT0 OP2,1 RH0), SW0 AU0, GT0,
    SO1,3, CZ0, UW0, autoranges, DC coupling, then VA VB IS MS and *ESR?."""
    transcript = configured(amplitude="0.005", bias="0.25", integration="1",
                            delay="0.5")
    with expected_protocol(Solartron1260, transcript) as inst:
        inst.configure_potentiostatic(0.005, dc_bias_V=0.25, integration_time_s=1, delay_s=0.5)
        assert (inst.coordinates, inst.ac_amplitude, inst.integration_time, inst.measurement_delay) == (
            "rectangular", 0.005, 1.0, 0.5)


def test_configure_potentiostatic_defaults():
    """Defaults: no bias, 0.1 s integration, no delay."""
    with expected_protocol(Solartron1260, configured()) as inst:
        inst.configure_potentiostatic(0.01)


@pytest.mark.parametrize("kwargs, name", [
    ({"amplitude_V": 0}, "amplitude_V"), ({"amplitude_V": 3.5}, "amplitude_V"),
    ({"amplitude_V": math.nan}, "amplitude_V"),
    ({"dc_bias_V": 41}, "dc_bias_V"), ({"integration_time_s": 0.001}, "integration_time_s"),
    ({"delay_s": -1}, "delay_s"), ({"delay_s": None}, "delay_s"),
])
def test_configure_potentiostatic_refuses(kwargs, name):
    """Every argument is checked before the reset is sent."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match=name):
        inst.configure_potentiostatic(**{"amplitude_V": 0.01, **kwargs})


def test_configure_potentiostatic_reports_a_refused_command():
    """Contract: the driver checks *ESR? after configuring and names the commands it sent since *CLS."""
    with expected_protocol(Solartron1260, configured(esr="32")) as inst, pytest.raises(SolartronError) as error:
        inst.configure_potentiostatic(0.01)
    message = str(error.value)
    assert "command error" in message and "OS0; OT0; OP2,1" in message and "MS 0" in message
    assert "TT2" not in message


@pytest.mark.parametrize("hz, seconds", [(1000, 2.1), (30, 2.1), (1, 5.0), (0.01, 302.0)])
def test_point_duration_s(hz, seconds):
    """Contract timing: MS + max(IS, 3 / FR); here IS = 0.1 s, MS = 2 s."""
    with expected_protocol(Solartron1260, [("IS 0.1", None), ("MS 2", None)]) as inst:
        inst.integration_time = 0.1
        inst.measurement_delay = 2
        assert inst.point_duration_s(hz) == pytest.approx(seconds)


def test_point_duration_s_needs_configuration():
    """Without IS and MS set since the last reset the duration is unknown."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(RuntimeError, match="configure_potentiostatic"):
        inst.point_duration_s(1000)


@pytest.mark.parametrize("hz, seconds", [(1e6, 5.2), (10, 5.6), (0.1, 65.0), (0.01, 605.0)])
def test_read_timeout_s(hz, seconds):
    """The per-point timeout is twice the point duration plus 5 s: it grows at low frequency."""
    with expected_protocol(Solartron1260, TIMING) as inst:
        inst.integration_time = 0.1
        inst.measurement_delay = 0
        assert inst.read_timeout_s(hz) == pytest.approx(seconds)


def test_trigger():
    """§2.5: per point FR f, then SI; the status check comes before SI, where an instrument that works in
    order answers at once (issue 14: after SI it answers only when the point is measured)."""
    with expected_protocol(Solartron1260, [("FR 1000", None), ("*ESR?", "0"), ("SI", None)]) as inst:
        inst.trigger(1000)


def test_trigger_confirms_the_frequency_was_accepted():
    """The *ESR? round trip reports a rejected FR at once (execution error, bit 16), before SI is sent."""
    transcript = [("FR 1000", None), ("*ESR?", "16")]
    with expected_protocol(Solartron1260, transcript) as inst, pytest.raises(SolartronError, match="FR 1000"):
        inst.trigger(1000)


def test_a_result_queued_before_the_trigger_is_stale_even_at_the_same_frequency(caplog):
    """A result nobody read comes before the *ESR? answer of the next trigger: it belongs to an earlier SI,
    whatever its frequency, so it is dropped and read_point() returns the new point."""
    old, new = "+1.0000000E+05,+5.0000E+01,-1.0000E+00,0,00", "+1.0000000E+05,+6.0000E+01,-2.0000E+00,0,00"
    transcript = [("CZ0", None), *TIMING, ("FR 100000", None), ("*ESR?", old), (None, "0"), ("SI", None),
                  (None, new)]
    with expected_protocol(Solartron1260, transcript) as inst, caplog.at_level(logging.WARNING):
        ready(inst)
        inst.trigger(1e5)
        assert inst.read_point(1e5) == complex(60, -2)
    assert "stale point" in caplog.text


@pytest.mark.parametrize("hz", [5e-6, 33e6, math.nan, "1000"])
def test_trigger_refuses(hz):
    """§2.3 FR range, before FR or SI is sent."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(ValueError, match="frequency_Hz"):
        inst.trigger(hz)


def test_trigger_refuses_high_amplitude_above_10_MHz():
    """§2.3 VA: at most 1 V rms above 10 MHz; 1 V is still allowed there."""
    transcript = [("VA 2", None), ("VA 1", None), ("FR 20000000", None), ("*ESR?", "0"), ("SI", None)]
    with expected_protocol(Solartron1260, transcript) as inst:
        inst.ac_amplitude = 2
        with pytest.raises(ValueError, match="10 MHz"):
            inst.trigger(20e6)
        inst.ac_amplitude = 1
        inst.trigger(20e6)


def test_read_point_rectangular():
    """§2.4 with CZ0: F, Z', Z'' (ohm), error 0, limits 00 (the bench-verified format)."""
    line = "+1.0000000E+03,+1.2346E+02,-4.5679E+01,0,00"
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, (None, line)]) as inst:
        ready(inst)
        assert inst.read_point(1000) == complex(123.46, -45.679)


def test_read_point_polar():
    """§2.4 with CZ1: F, |Z| (ohm), phase (degrees)."""
    line = "+1.0000000E+01,+1.0000E+02,-3.0000E+01,0,00"
    with expected_protocol(Solartron1260, [("CZ1", None), *TIMING, (None, line)]) as inst:
        ready(inst, "polar")
        z = inst.read_point(10)
    assert z.real == pytest.approx(100 * math.cos(math.radians(30)))
    assert z.imag == pytest.approx(-50.0)


def test_read_point_rereads_a_stale_point(caplog):
    """§2.4/§2.10: read late, the queue still holds the previous point (1258.9 Hz); it is dropped, not returned."""
    transcript = [("CZ0", None), *TIMING, ("FR 1000", None), ("*ESR?", "0"), ("SI", None),
                  (None, "+1.2589254E+03,+1.1000E+02,-4.0000E+01,0,00"),
                  (None, "+1.0000000E+03,+1.2000E+02,-4.5000E+01,0,00")]
    with expected_protocol(Solartron1260, transcript) as inst:
        ready(inst)
        inst.trigger(1000)
        with caplog.at_level(logging.WARNING):
            assert inst.read_point(1000) == complex(120, -45)
    assert "stale point" in caplog.text and "1258.93" in caplog.text


def test_read_point_accepts_the_instruments_rounding():
    """A returned frequency within 1e-4 (relative) of the one asked for is the same point."""
    line = "+1.2589250E+03,+1.0000E+02,-1.0000E+01,0,00"
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, (None, line)]) as inst:
        ready(inst)
        assert inst.read_point(1258.9254) == complex(100, -10)


def test_read_point_gives_up_on_stale_points():
    """Four stale results in a row: an error, and none of them returned."""
    stale = (None, "+2.0000000E+03,+1.0000E+02,-1.0000E+01,0,00")
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, *[stale] * 4]) as inst:
        ready(inst)
        with pytest.raises(SolartronError, match="other frequencies than 1000 Hz"):
            inst.read_point(1000)


def test_read_point_error_flag():
    """§2.4: a non-zero error field flags the point; it is raised, not returned."""
    line = "+1.0000000E+03,+1.0000E+02,-1.0000E+01,1,00"
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, (None, line)]) as inst:
        ready(inst)
        with pytest.raises(SolartronError, match="error 1"):
            inst.read_point(1000)


@pytest.mark.parametrize("limits", ["01", "-1", "+1"])
def test_read_point_limit_flags_are_logged(caplog, limits):
    """§2.4: limit flags other than 00 (the manual: -1 low, +1 high) are reported; the point stands."""
    line = f"+1.0000000E+03,+1.0000E+02,-1.0000E+01,0,{limits}"
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, (None, line)]) as inst:
        ready(inst)
        assert inst.read_point(1000) == complex(100, -10)
    assert f"limit flags '{limits}'" in caplog.text


@pytest.mark.parametrize("line", ["OVERLOAD", "", "+1.0000000E+03,+1.0000E+02", "+1.0E+03,abc,-1.0E+01,0,00",
                                  "+1.0E+03,+1.0E+02,-1.0E+01,0,00,9", "FREQ +1.0E+03,+1.0E+02,-1.0E+01,0,00",
                                  "+1.0E+03,NaN,-1.0E+01,0,00"])
def test_read_point_unparsable(line):
    """§2.4: anything but 'F, a, b, error[, limits]' raises, quoting the raw line."""
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, (None, line)]) as inst:
        ready(inst)
        with pytest.raises(SolartronError) as error:
            inst.read_point(1000)
    assert repr(line) in str(error.value)


def test_read_point_timeout_grows_at_low_frequency():
    """§2.10: low-frequency points need long timeouts. The read at 0.01 Hz waits 605 s (2 x 300 s + 5 s),
    at 1 kHz 5.2 s; the usual timeout is restored after each read."""
    lines = [(None, "+1.0000000E-02,+1.0000E+03,-2.0000E+03,0,00"),
             (None, "+1.0000000E+03,+1.0000E+02,-1.0000E+01,0,00")]
    with expected_protocol(Solartron1260, [("CZ0", None), *TIMING, *lines]) as inst:
        ready(inst)
        timeout = PropertyMock(return_value=20_000)
        type(inst.adapter.connection).timeout = timeout
        inst.read_point(0.01)
        inst.read_point(1000)
    assert timeout.call_args_list == [call(), call(605_000), call(20_000), call(), call(5_200), call(20_000)]


def test_read_point_no_result():
    """No line within the timeout: an error naming the point and what to check."""
    with replay([("CZ0", None), *TIMING, ("FR 1000", None), ("*ESR?", "0"), ("SI", None),
                 (None, TIMEOUT)]) as inst:
        ready(inst)
        inst.trigger(1000)
        with pytest.raises(SolartronError, match="1000 Hz within 5.2 s"):
            inst.read_point(1000)


def test_read_point_needs_configuration():
    """After a reset the coordinates are unknown, so a result cannot be read."""
    with expected_protocol(Solartron1260, []) as inst, pytest.raises(RuntimeError, match="configure_potentiostatic"):
        inst.read_point(1000)


# --- the ImpedanceAnalyzer role ---

def test_analyzer_is_the_impedance_role():
    with expected_protocol(Solartron1260, []) as inst:
        analyzer = inst.analyzer()
    assert isinstance(analyzer, Solartron1260Analyzer) and isinstance(analyzer, ImpedanceAnalyzer)


@pytest.mark.parametrize("reply, model", [
    (IDN, "1260 IMPEDANCE ANALYZER"),
    ("SCHLUMBERGER TECHNOLOGIES, 1260 IMPEDANCE ANALYZER, 0, 0", "1260 IMPEDANCE ANALYZER"),
    ("1260A IMPEDANCE ANALYZER, SOLARTRON, 12345, 2.1", "1260A IMPEDANCE ANALYZER"),
])
def test_analyzer_identity(reply, model):
    """§2.1: the 1260A puts the model first, older firmware the maker first."""
    with expected_protocol(Solartron1260, [("*IDN?", reply)]) as inst:
        identity = inst.analyzer().identity()
    fields = [f.strip() for f in reply.split(",")]
    assert identity == {"make": "Solartron", "model": model, "serial_number": fields[2], "firmware": fields[3]}


def test_analyzer_identity_with_fewer_fields():
    """Only the model is required; firmware that sends fewer fields leaves serial number and firmware empty."""
    with expected_protocol(Solartron1260, [("*IDN?", "1260 IMPEDANCE ANALYZER")]) as inst:
        identity = inst.analyzer().identity()
    assert identity == {"make": "Solartron", "model": "1260 IMPEDANCE ANALYZER", "serial_number": "", "firmware": ""}


def test_analyzer_identity_of_another_instrument():
    """§2.1: a 1255B (or anything else) at the address is refused."""
    reply = "1255B FREQUENCY RESPONSE ANALYZER, SOLARTRON,0,0"
    with expected_protocol(Solartron1260, [("*IDN?", reply)]) as inst, \
            pytest.raises(SolartronError, match="not a Solartron 1260"):
        inst.analyzer().identity()


def test_analyzer_spectrum_point():
    """The role's configure, point_duration_s, trigger and read are the driver's, byte for byte."""
    transcript = [*configured(), ("FR 100", None), ("*ESR?", "0"), ("SI", None),
                  (None, "+1.0000000E+02,+5.0000E+01,-2.0000E+01,0,00")]
    with expected_protocol(Solartron1260, transcript) as inst:
        analyzer = inst.analyzer()
        analyzer.configure(amplitude_V=0.01)
        assert analyzer.point_duration_s(100) == pytest.approx(0.1)
        analyzer.trigger(100)
        assert analyzer.read(100) == complex(50, -20)


def test_analyzer_close():
    with expected_protocol(Solartron1260, []) as inst:
        inst.analyzer().close()
        assert inst.adapter.connection.close.called


# --- against the in-order emulator on a virtual clock (issue 14) ---


class RCCell:
    """R ‖ C, noise-free: 100 ohm, 1 µF."""

    def impedance(self, frequency_Hz: float) -> complex:
        return 100.0 / (1 + 2j * math.pi * frequency_Hz * 100.0 * 1e-6)

    measured_impedance = impedance


@pytest.fixture
def bench():
    """A stepped virtual clock (time moves only when a test advances it), an emulated 1260 on it, and the
    driver connected through PyVISA with a 2 s timeout, so a query that waits on the clock fails fast."""
    clock = VirtualClock()
    with Si1260Emulator(clock, RCCell()) as emulator:
        inst = Solartron1260(f"TCPIP::127.0.0.1::{emulator.port}::SOCKET", visa_library="@py", timeout=2000)
        try:
            inst.configure_potentiostatic(0.01)
            yield clock, inst
        finally:
            inst.adapter.close()


@pytest.mark.parametrize("hz", [1e5, 1000.0, 0.01])
def test_a_point_waits_once_and_reads_the_manuals_record(bench, hz):
    """trigger() returns at once (no query blocks on the measurement), the point is read after exactly its own
    duration of bench time, and the result is the cell at 5 significant digits. At 0.01 Hz (300 s) the old
    *ESR? after SI outlived the VISA timeout and a raw VisaIOError escaped."""
    clock, inst = bench
    duration = inst.point_duration_s(hz)
    inst.trigger(hz)
    assert clock.now == 0.0  # nothing waited for the point
    clock.advance(duration)
    z = inst.read_point(hz)
    assert clock.now == pytest.approx(duration)
    expected = RCCell().impedance(hz)
    assert (z.real, z.imag) == (pytest.approx(expected.real, rel=1e-4), pytest.approx(expected.imag, rel=1e-4))
    inst.write("DO")  # the same result again, read raw: the manual's 43-character record
    line = inst.read()
    assert MANUAL_RECORD.fullmatch(line) and len(line) == 43


def test_a_query_during_a_measurement_is_a_solartron_timeout_and_the_point_survives(bench):
    """An in-order 1260 answers *ESR? only after the point: asked during a 300 s point, the 2 s timeout
    passes and a SolartronTimeout (not a VisaIOError) is raised; the result still comes first afterwards."""
    clock, inst = bench
    inst.trigger(0.01)
    with pytest.raises(SolartronTimeout, match=r"within 2 s .*'\*ESR\?'"):
        inst.check_errors()
    clock.advance(inst.point_duration_s(0.01))
    assert inst.read_point(0.01) == pytest.approx(RCCell().impedance(0.01), rel=1e-4)
    assert inst.read() == "0"  # the late answer to *ESR?, after the result


def test_the_driver_declares_no_dynamic_property_so_its_plain_attribute_lookup_guards_nothing():
    """The driver reads its attributes without PyMeasure's per-access check for dynamic-property names (a fifth of
    a point's cost); that is the same only while it declares none."""
    with expected_protocol(Solartron1260, []) as inst:
        assert inst._special_names == []
