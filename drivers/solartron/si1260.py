"""Solartron 1260/1260A impedance/gain-phase analyzer: a PyMeasure driver, and labctl's impedance role.

Wire protocol (research/instruments.md §2; the wire contract of issue 3): ASCII commands made of two-letter
mnemonics, one per write, CR LF terminated, over GPIB or a GPIB-Ethernet gateway (PyVISA
``TCPIP::host::port::SOCKET``). The 1260 never acknowledges a setting: a bad command only sets a bit of the
event status register, which ``check_errors()`` reads (``*ESR?``). It sends a line only for a query
(``*IDN?``, ``*ESR?``) and, with results routed to GPIB (``OP2,1``), for each single measurement (``SI``):
``frequency, a, b, error, limits`` with a, b = Z', Z'' in ohm (``CZ0``) or |Z| in ohm and phase in degrees
(``CZ1``); the manual's record has 8 significant digits for the frequency and 5 for a and b
(``+1.0000000E+03,+1.2346E+02,-4.5679E+01,0,00``).

The 1260 handles commands in order: a query sent while a point is being measured is answered only after the
point's result. So nothing is asked between ``SI`` and the result. Spectra are stepped in software, one point
at a time: ``trigger(f)`` (FR, *ESR?, SI), let ``point_duration_s(f)`` pass, then ``read_point(f)``, which
drops a result for another frequency (a stale point of an earlier trigger). A VISA error (a timeout, a lost
connection) is raised as a SolartronError naming what was under way.

A result line has no checksum. One whose frequency field was changed on the way looks like a stale point and is
dropped; when no other line follows, the driver asks ``DO`` (output the last result again) once, so the point is
read from the 1260's memory instead of lost. A changed digit in Z' or Z'' passes the wire: the procedure's
neighbour check (``labctl.analysis.spectrum_points``) catches it. ``stop()`` (``BK``) ends a point in progress, so
the generator stops driving the cell, reopening a connection that was lost first; closing the role does it.
"""

from __future__ import annotations

import cmath
import logging
import math
import numbers
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pymeasure.adapters import Adapter
from pymeasure.instruments import Channel, Instrument
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from labctl.roles import Clock

log = logging.getLogger(__name__)

FREQUENCY_HZ = (10e-6, 32e6)
AMPLITUDE_V = (0.0, 3.0)  # V rms
HIGH_FREQUENCY_HZ, HIGH_FREQUENCY_MAX_AMPLITUDE_V = 10e6, 1.0  # above 10 MHz the generator gives at most 1 V rms
BIAS_V = (-40.95, 40.95)
INTEGRATION_S = (0.01, 1e5)
DELAY_S = (0.0, 1e5)
MIN_PERIODS = 3  # a point integrates over at least three periods of the generator

COORDINATES = {"rectangular": 0, "polar": 1}
SOURCES = {"V1/I": "1,3", "V2/I": "2,3", "V1/V2": "1,2", "V2/V1": "2,1"}  # SO numerator,denominator
GENERATORS = {"voltage": 0}  # GT1 (current generator) needs IA/IB, which this driver does not drive
VOLTAGE_RANGES = {"auto": 0, 0.03: 1, 0.3: 2, 3: 3}  # full scale, V
CURRENT_RANGES = {"auto": 0, 6e-6: 1, 60e-6: 2, 600e-6: 3, 6e-3: 4, 60e-3: 5}  # full scale, A
COUPLINGS = {"DC": 0, "AC": 1}

# Event status register bits (IEEE 488.2): the first two mean a command of ours was refused.
FATAL_BITS = ((32, "a command error (bit 32: unknown mnemonic or malformed command)"),
              (16, "an execution error (bit 16: value out of range or not allowed)"))
NOTED_BITS = ((8, "a device-dependent error (bit 8)"),
              (4, "a query error (bit 4: a reply was read when none was ready, or was lost)"))

SIGNIFICANT_DIGITS = 8  # the 1260 takes and reports frequencies to 8 significant digits
FREQUENCY_RTOL = 1e-4  # a returned frequency further off than this belongs to another point
STALE_REREADS = 3
READ_MARGIN_S = 5.0
READY_TIMEOUT_S, READY_ATTEMPTS = 10.0, 3  # waiting for *IDN? after TT2; scripts see 2-5 s of reset
DEFAULT_TIMEOUT_MS = 20_000
SENT_KEPT = 40


class SolartronError(Exception):
    """The 1260 refused a command, flagged a measurement, sent something labctl cannot read, or could not be
    reached (a VISA error)."""


class SolartronTimeout(SolartronError):
    """The 1260 sent nothing within the time a read allowed."""


def check_number(name: str, value: Any, limits: tuple[float, float], unit: str) -> float:
    """``value`` as a float if it is a real number within ``limits``, else a ValueError naming ``name``."""
    low, high = limits
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{name} = {value!r} is not a number in {low:g} .. {high:g} {unit}; give one in that range")
    return float(value)


def _in_range(name: str, unit: str) -> Callable[[Any, tuple[float, float]], float]:
    """A PyMeasure validator that refuses, never clips, a value outside the property's range."""
    return lambda value, limits: check_number(name, value, limits, unit)


def _one_of(name: str) -> Callable[[Any, dict], Any]:
    """A PyMeasure validator that refuses a value that is not a key of the property's map."""

    def validate(value: Any, choices: dict) -> Any:
        try:
            known = not isinstance(value, bool) and value in choices
        except TypeError:  # unhashable, so certainly not a key
            known = False
        if not known:
            raise ValueError(f"{name} = {value!r} is not one of {', '.join(map(repr, choices))}")
        return value

    return validate


def number(value: float) -> str:
    """A number in a form every 1260 firmware and GPIB gateway reads, rounded to the 8 significant digits the
    1260 takes: a plain decimal (``1000``, ``0.005``, ``-40.95``, ``32000000``) or, below 1e-4, an upper-case
    ``E`` with a one-digit exponent (``1E-5``); never a padded exponent such as ``E+03``."""
    mantissa, _, exponent = f"{value + 0.0:.{SIGNIFICANT_DIGITS}g}".partition("e")  # + 0.0: -0.0 becomes 0
    return f"{mantissa}E{int(exponent)}" if exponent else mantissa


@dataclass(frozen=True)
class Result:
    """One result line: the frequency (Hz) and the two coordinates as sent, the error and limit flags."""

    frequency_Hz: float
    a: float
    b: float
    error: int
    limits: str
    line: str

    def impedance(self, coordinates: str) -> complex:
        """Z = Z' + jZ'' in ohm, from (Z', Z'') or from (|Z|, phase in degrees)."""
        if coordinates == "polar":
            return cmath.rect(self.a, math.radians(self.b))
        return complex(self.a, self.b)


def parse_result(line: str) -> Result:
    """Parse ``frequency, a, b, error[, limits]``; a SolartronError quoting ``line`` if it is not a result."""
    fields = [field.strip() for field in line.split(",")]
    try:
        if len(fields) not in (4, 5):
            raise ValueError(f"{len(fields)} fields")
        frequency, a, b = (float(x) for x in fields[:3])
        error = int(fields[3])
        if not (frequency > 0 and math.isfinite(frequency) and math.isfinite(a) and math.isfinite(b)):
            raise ValueError("a number is not finite")
    except ValueError as e:
        raise SolartronError(f"the 1260 sent {line!r}, not a result line 'frequency, a, b, error, limits' ({e}); "
                             "configure_potentiostatic() sets that format (OS0, OT0, RH0)") from None
    return Result(frequency, a, b, error, fields[4] if len(fields) == 5 else "", line)


def is_result(line: str) -> bool:
    """Whether ``line`` is a result line (and not, say, the answer to a query)."""
    try:
        parse_result(line)
    except SolartronError:
        return False
    return True


def parse_identity(reply: str) -> dict[str, str]:
    """Make, model, serial number and firmware from a ``*IDN?`` reply, or a SolartronError if not a 1260.

    The 1260A answers "1260 IMPEDANCE ANALYZER, SOLARTRON, 0, 0" (model first); older firmware answers
    "SCHLUMBERGER TECHNOLOGIES, 1260 IMPEDANCE ANALYZER, 0, 0" (maker first, the IEEE 488.2 order). Only the
    model is required: other firmware may send fewer fields (then serial number or firmware are "").
    """
    fields = [field.strip() for field in reply.split(",")]
    model = next((field for field in fields[:2] if "1260" in field), None)
    if model is None:
        raise SolartronError(f"*IDN? was answered {reply!r}, which is not a Solartron 1260; check the GPIB address")
    serial_number, firmware = ([*fields[2:], "", ""])[:2]
    return {"make": "Solartron", "model": model, "serial_number": serial_number, "firmware": firmware}


class _Remembered:
    """A setting the 1260 cannot report: the driver keeps the last value it set (None until then, and after
    a reset), because the duration of a point and the meaning of a result depend on it."""

    def __init__(self, setting: property) -> None:
        self._setting = setting
        self.__doc__ = setting.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: Solartron1260 | None, objtype: type | None = None) -> Any:
        return self if obj is None else obj._settings.get(self._name)

    def __set__(self, obj: Solartron1260, value: Any) -> None:
        self._setting.__set__(obj, value)  # validates, then writes
        obj._settings[self._name] = value


class _Input(Channel):
    """An input of the 1260, numbered as in its RA and DC commands: V1 = 1, V2 = 2, I = 3."""

    coupling = Channel.setting(
        "DC{ch},%d",
        """Set the coupling of this input: "DC" (passes the lowest frequencies) or "AC"; str.""",
        validator=_one_of("coupling"), values=COUPLINGS, map_values=True,
    )


class VoltageInput(_Input):
    """Voltage input V1 or V2 (channel 1 or 2 of the RA and DC commands)."""

    voltage_range = Channel.setting(
        "RA{ch},%d",
        """Set the range of this voltage input: "auto" or the full scale in V; str or float, "auto", 0.03, 0.3, 3.""",
        validator=_one_of("voltage_range"), values=VOLTAGE_RANGES, map_values=True,
    )


class CurrentInput(_Input):
    """Current input I (channel 3 of the RA and DC commands)."""

    current_range = Channel.setting(
        "RA{ch},%d",
        """Set the range of the current input: "auto" or the full scale in A;
        str or float, "auto", 6e-6, 60e-6, 600e-6, 6e-3, 60e-3.""",
        validator=_one_of("current_range"), values=CURRENT_RANGES, map_values=True,
    )


class Solartron1260(Instrument):
    """Solartron 1260/1260A impedance/gain-phase analyzer.

    ``adapter`` is a PyVISA resource string, e.g. ``"GPIB0::4::INSTR"`` (the GPIB address is set on the
    instrument; check it there), ``"TCPIP::192.168.1.30::1234::SOCKET"`` for a GPIB-Ethernet gateway or
    labctl's emulator (with ``visa_library="@py"``), or a PyMeasure adapter. Keyword arguments go to PyVISA;
    ``timeout`` (ms) bounds ordinary queries, while ``read_point`` sets its own per point.

    The 1260 cannot be asked for its settings. ``coordinates``, ``ac_amplitude``, ``integration_time`` and
    ``measurement_delay`` read back what this driver last set (None after a reset); the others are write-only.
    """

    def __init__(self, adapter: Adapter | str | int, name: str = "Solartron 1260 impedance analyzer",
                 **kwargs: Any) -> None:
        connection = {"write_termination": "\r\n", "read_termination": "\r\n", "timeout": DEFAULT_TIMEOUT_MS}
        super().__init__(adapter, name, includeSCPI=False, **(connection | kwargs))
        self._settings: dict[str, Any] = {}
        self._sent: deque[str] = deque(maxlen=SENT_KEPT)  # commands since the last *ESR? or *CLS, to blame
        self._read_timeout_s = (connection | kwargs)["timeout"] / 1000  # what a read waits now, for messages
        self._last_command = ""  # what a line read now answers, for messages
        self._in_flight: float | None = None  # the frequency of a point triggered and not read yet
        self._connection_lost = False  # a lost connection is reopened before stop() sends BK

    # PyMeasure checks every attribute read and write against the names of dynamic properties, a Python call
    # each (about 150 per point, a fifth of its cost); this driver declares none, so the plain lookup is the same.
    __getattribute__ = object.__getattribute__
    __setattr__ = object.__setattr__

    input_v1 = Instrument.ChannelCreator(VoltageInput, 1)
    input_v2 = Instrument.ChannelCreator(VoltageInput, 2)
    input_i = Instrument.ChannelCreator(CurrentInput, 3)

    id = Instrument.measurement(
        "*IDN?",
        """Get the identification: model, make, serial number and firmware, comma-separated; str.""",
        cast=str, maxsplit=0,
    )

    frequency = Instrument.setting(
        "FR %s",
        """Set the generator frequency in Hz; float, 10e-6 .. 32e6.""",
        validator=_in_range("frequency", "Hz"), values=FREQUENCY_HZ, set_process=number,
    )

    ac_amplitude = _Remembered(Instrument.setting(
        "VA %s",
        """Control the AC amplitude of the voltage generator in V rms (at most 1 above 10 MHz, which trigger()
        checks); float, 0 .. 3.""",
        validator=_in_range("ac_amplitude", "V rms"), values=AMPLITUDE_V, set_process=number,
    ))

    dc_bias = Instrument.setting(
        "VB %s",
        """Set the DC bias of the voltage generator in V; float, -40.95 .. 40.95.""",
        validator=_in_range("dc_bias", "V"), values=BIAS_V, set_process=number,
    )

    integration_time = _Remembered(Instrument.setting(
        "IS %s",
        """Control the integration time of a point in s (the 1260 integrates at least 3 periods);
        float, 0.01 .. 1e5.""",
        validator=_in_range("integration_time", "s"), values=INTEGRATION_S, set_process=number,
    ))

    measurement_delay = _Remembered(Instrument.setting(
        "MS %s",
        """Control the delay before each point's integration starts, in s; float, 0 .. 1e5.""",
        validator=_in_range("measurement_delay", "s"), values=DELAY_S, set_process=number,
    ))

    coordinates = _Remembered(Instrument.setting(
        "CZ%d",
        """Control the coordinates of impedance results: "rectangular" (Z', Z'' in ohm) or "polar"
        (|Z| in ohm, phase in degrees); str.""",
        validator=_one_of("coordinates"), values=COORDINATES, map_values=True,
    ))

    source = Instrument.setting(
        "SO%s",
        """Set the measured ratio: "V1/I" (impedance at input V1), "V2/I", "V1/V2" or "V2/V1"; str.""",
        validator=_one_of("source"), values=SOURCES, map_values=True,
    )

    generator = Instrument.setting(
        "GT%d",
        """Set the generator type: "voltage" (amplitude and bias in V); str, "voltage".""",
        validator=_one_of("generator"), values=GENERATORS, map_values=True,
    )

    def write(self, command: str, **kwargs: Any) -> None:
        """Write one command (CR LF is appended); it is kept to be named if the 1260 flags an error."""
        self._sent.append(command)
        self._last_command = command
        with self._visa_errors(f"sending {command!r}"):
            super().write(command, **kwargs)

    def read(self, **kwargs: Any) -> str:
        """Read one line (a reply or a result); SolartronTimeout if none comes within the read timeout."""
        with self._visa_errors(f"waiting for a line after {self._last_command!r}"):
            return super().read(**kwargs)

    def reset(self) -> None:
        """Reset the 1260 to its power-on defaults (TT2, which also cancels a measurement) and wait until it
        answers ``*IDN?`` again; result lines an earlier measurement left queued are read and dropped.

        Raises SolartronError if no 1260 answers. The driver forgets every setting it made.
        """
        self.write("TT2")
        self._settings.clear()
        self._in_flight = None
        parse_identity(self._await_identity())

    def clear_errors(self) -> None:
        """Clear the event status register (``*CLS``), so that check_errors() blames only later commands."""
        self.write("*CLS")
        self._sent.clear()

    def check_errors(self) -> list[str]:
        """Read and clear the event status register (``*ESR?``).

        Raises SolartronError, naming the commands sent since the last check, if the 1260 flagged a command
        error (bit 32) or an execution error (bit 16). Returns the other error flags (query, device), logged.
        Result lines nobody read that arrive before the answer are stale points: logged and dropped. Never
        call it while a point is being measured: the 1260 answers only after the point (SolartronTimeout if
        that is longer than the read timeout).
        """
        sent = list(self._sent)
        reply = self.ask("*ESR?").strip()
        for _ in range(STALE_REREADS):
            if not is_result(reply):
                break
            log.warning("stale point: dropped the result %r, which nobody read, queued before the *ESR? answer",
                        reply)
            reply = self.read().strip()
        self._sent.clear()
        try:
            status = int(reply)
        except ValueError:
            raise SolartronError(f"*ESR? was answered {reply!r}, not an event status register (an integer); "
                                 "call reset() to empty the output queue") from None
        fatal = [text for bit, text in FATAL_BITS if status & bit]
        if fatal:
            raise SolartronError(f"the 1260 flagged {' and '.join(fatal)} (event status {status}) after the "
                                 f"commands {'; '.join(sent) or '(none)'}; correct the command or its value")
        noted = [text for bit, text in NOTED_BITS if status & bit]
        for text in noted:
            log.warning("the 1260 flagged %s (event status %d)", text, status)
        return noted

    def configure_potentiostatic(self, amplitude_V: float, dc_bias_V: float = 0.0, integration_time_s: float = 0.1,
                                 delay_s: float = 0.0) -> None:
        """Reset the 1260 and set it up for a two-terminal impedance spectrum, never relying on what the
        front panel was left at: the voltage generator drives the cell with ``amplitude_V`` V rms around
        ``dc_bias_V`` V; each point waits ``delay_s`` s, then integrates ``integration_time_s`` s (at least
        3 periods); results are Z = V1/I in ohm, rectangular.

        Every argument is checked before anything is sent. Raises SolartronError if the 1260 flagged a command.
        """
        amplitude = check_number("amplitude_V", amplitude_V, AMPLITUDE_V, "V rms")
        if amplitude == 0:
            raise ValueError("amplitude_V = 0 V rms leaves nothing to measure; give e.g. 0.01 (10 mV rms)")
        bias = check_number("dc_bias_V", dc_bias_V, BIAS_V, "V")
        integration = check_number("integration_time_s", integration_time_s, INTEGRATION_S, "s")
        delay = check_number("delay_s", delay_s, DELAY_S, "s")
        self.reset()  # TT2: power-on defaults, whatever the front panel or the last user left
        self.clear_errors()  # *CLS: flags from before the reset are not ours to report
        self.write("OS0")  # comma between result fields: parse_result splits on commas
        self.write("OT0")  # CR LF after each result line: the read termination
        self.write("OP2,1")  # send every result to GPIB in ASCII; without it SI outputs nothing
        self.write("RH0")  # no heading before results: each line starts with the frequency
        self.write("SW0")  # internal sweep off: SI measures at the FR frequency only
        self.write("AU0")  # auto-integration off: each point integrates IS, as point_duration_s assumes
        self.generator = "voltage"  # GT0: amplitude and bias in V (potentiostatic)
        self.source = "V1/I"  # SO1,3: Z = V1 / I, the cell across V1, its current through input I
        self.coordinates = "rectangular"  # CZ0: results are Z', Z'' in ohm
        self.write("UW0")  # phase within +-180 degrees (matters only if polar coordinates are chosen later)
        self.input_v1.voltage_range = "auto"  # RA1,0: autorange, for cells from mohm to Gohm
        self.input_i.current_range = "auto"  # RA3,0
        self.input_v1.coupling = "DC"  # DC1,0: AC coupling would attenuate the lowest frequencies
        self.input_i.coupling = "DC"  # DC3,0
        self.ac_amplitude = amplitude  # VA
        self.dc_bias = bias  # VB
        self.integration_time = integration  # IS
        self.measurement_delay = delay  # MS
        self.check_errors()  # *ESR?: the 1260 acknowledges nothing, so ask whether it refused any of this

    def point_duration_s(self, frequency_Hz: float) -> float:
        """How long one point at ``frequency_Hz`` takes, in s: the delay plus the integration time or three
        periods, whichever is longer. Needs the delay and integration time set (configure_potentiostatic)."""
        f = check_number("frequency_Hz", frequency_Hz, FREQUENCY_HZ, "Hz")
        integration, delay = self.integration_time, self.measurement_delay
        if integration is None or delay is None:
            raise RuntimeError("the integration time and measurement delay are unknown (never set, or reset "
                               "since); call configure_potentiostatic() first")
        return delay + max(integration, MIN_PERIODS / f)

    def read_timeout_s(self, frequency_Hz: float) -> float:
        """How long read_point() waits for a point's result, in s: twice the point's duration plus 5 s, so a
        slow low-frequency point is never taken for a lost one."""
        return 2 * self.point_duration_s(frequency_Hz) + READ_MARGIN_S

    def trigger(self, frequency_Hz: float) -> None:
        """Set the generator frequency (Hz), check that the 1260 took it (``*ESR?``), and start one
        measurement (SI); its result line comes point_duration_s() later and read_point() reads it.

        The check comes before SI: the 1260 handles commands in order, so a query after SI would be answered
        only when the point is measured (and outlive the read timeout below about 0.1 Hz).
        """
        f = check_number("frequency_Hz", frequency_Hz, FREQUENCY_HZ, "Hz")
        amplitude = self.ac_amplitude
        if f > HIGH_FREQUENCY_HZ and amplitude is not None and amplitude > HIGH_FREQUENCY_MAX_AMPLITUDE_V:
            raise ValueError(f"frequency_Hz = {f:g} Hz is above 10 MHz, where the 1260 gives at most 1 V rms, but "
                             f"ac_amplitude is {amplitude:g} V rms; lower the amplitude or the frequency")
        self.frequency = f
        self.check_errors()  # also: nothing is in flight, so SI goes out at once, not held back by the socket
        self.write("SI")
        self._in_flight = f

    def read_point(self, frequency_Hz: float) -> complex:
        """The impedance Z = Z' + jZ'' (ohm) of the point triggered at ``frequency_Hz`` (Hz).

        Waits up to read_timeout_s() for each line. A result for another frequency (relative difference
        above 1e-4) is a stale point of an earlier trigger: it is logged and dropped and the next line read,
        up to 3 times; it is never returned. Raises SolartronError if the 1260 flags the point (error field
        not 0), sends a line that is not a result, or sends none in time.
        """
        f = check_number("frequency_Hz", frequency_Hz, FREQUENCY_HZ, "Hz")
        coordinates = self.coordinates
        if coordinates is None:
            raise RuntimeError("the result coordinates are unknown (never set, or reset since); call "
                               "configure_potentiostatic() first")
        result = self._read_result(f, self.read_timeout_s(f))
        self._in_flight = None
        if result.error != 0:
            raise SolartronError(f"the 1260 flagged the point at {f:g} Hz with error {result.error} "
                                 f"({result.line!r}); check the cell connections and the input ranges")
        if result.limits.strip("0"):
            log.warning("the 1260 set limit flags %r on the point at %g Hz", result.limits, f)
        return result.impedance(coordinates)

    def stop(self) -> None:
        """End the point in progress, if one may be (BK: the generator stops driving the cell), and confirm it with
        ``*ESR?``, which the 1260 answers only once BK was taken. If that fails (a connection lost, perhaps unseen:
        a socket whose peer left still takes a write), the connection is reopened and BK sent again, once. Raises
        SolartronError if the 1260 cannot be reached."""
        if self._in_flight is None:
            return
        for attempt in range(2):
            try:
                if attempt or self._connection_lost:
                    self._reconnect()
                self.write("BK")
                self.check_errors()
                self._in_flight = None
                return
            except SolartronError:
                if attempt:
                    raise

    def analyzer(self) -> Solartron1260Analyzer:
        """This instrument in labctl's ImpedanceAnalyzer role."""
        return Solartron1260Analyzer(self)

    # --- internals ---

    @contextmanager
    def _timeout(self, seconds: float) -> Iterator[None]:
        """Let reads inside wait up to ``seconds`` (PyVISA counts ms), then restore the usual timeout."""
        connection = self.adapter.connection
        usual, usual_s = connection.timeout, self._read_timeout_s
        connection.timeout, self._read_timeout_s = round(seconds * 1000), seconds
        try:
            yield
        finally:
            connection.timeout, self._read_timeout_s = usual, usual_s

    @contextmanager
    def _visa_errors(self, action: str) -> Iterator[None]:
        """Raise a VISA error as a SolartronError naming ``action``, so that a procedure reports an instrument
        fault instead of a traceback; a timeout as SolartronTimeout, which callers that wait may catch."""
        try:
            yield
        except VisaIOError as e:
            if e.error_code == StatusCode.error_timeout:
                raise SolartronTimeout(f"the 1260 sent nothing within {self._read_timeout_s:g} s while {action}; "
                                       "check its power, GPIB address and cable or gateway") from e
            self._connection_lost = True
            raise SolartronError(f"VISA error while {action}: {e.description}; check the GPIB cable or gateway "
                                 "and the resource string") from e
        except OSError as e:  # pyvisa-py raises a TCPIP SOCKET's own errors (reset by the peer, broken pipe)
            self._connection_lost = True
            raise SolartronError(f"the connection to the 1260 was lost while {action} ({e}): an instrument fault, not "
                                 "the cell; check the gateway, its network cable and the 1260's power") from e

    def _reconnect(self) -> None:
        """Close and reopen the VISA session, keeping its timeout and terminations (a reopened session forgets
        them)."""
        connection = self.adapter.connection
        kept = {name: getattr(connection, name) for name in ("timeout", "read_termination", "write_termination")}
        with self._visa_errors("reconnecting"):
            connection.close()
            connection.open()
        for name, value in kept.items():
            setattr(connection, name, value)
        self._connection_lost = False

    def _await_identity(self) -> str:
        """Ask ``*IDN?`` until the 1260 answers (it ignores the bus while it resets), past queued results."""
        for attempt in range(1, READY_ATTEMPTS + 1):
            try:
                with self._timeout(READY_TIMEOUT_S):
                    reply = self.ask("*IDN?")
                    for _ in range(STALE_REREADS):
                        if not is_result(reply):
                            break
                        log.warning("dropped the result line %r left queued by an earlier measurement", reply)
                        reply = self.read()
                    return reply
            except SolartronTimeout:
                log.info("the 1260 did not answer *IDN? within %g s of a reset (attempt %d of %d)",
                         READY_TIMEOUT_S, attempt, READY_ATTEMPTS)
        raise SolartronError(f"the 1260 did not answer *IDN? in {READY_ATTEMPTS} tries of {READY_TIMEOUT_S:g} s "
                             "after a reset (TT2); check its power, GPIB address and cable or gateway")

    def _read_result(self, f: float, timeout_s: float) -> Result:
        """The next result line for frequency ``f``, dropping stale ones; if nothing follows a dropped line, it
        may have been this point with its frequency changed on the way, so the 1260 is asked for it again (DO)."""
        dropped: list[str] = []
        for _ in range(1 + STALE_REREADS):
            try:
                result = parse_result(self._read_line(f, timeout_s))
            except SolartronTimeout:
                if not dropped:
                    raise
                return self._output_again(f, dropped)
            if abs(result.frequency_Hz - f) <= FREQUENCY_RTOL * f:
                return result
            log.warning("stale point: asked for %g Hz, read a result for %g Hz (%r); dropped it, reading again",
                        f, result.frequency_Hz, result.line)
            dropped.append(result.line)
        raise SolartronError(f"{1 + STALE_REREADS} results in a row were for other frequencies than {f:g} Hz "
                             f"(last {result.line!r}); call configure_potentiostatic() to reset the 1260 and "
                             "empty its output queue, then trigger again")

    def _output_again(self, f: float, dropped: list[str]) -> Result:
        """The last result, output again (DO), when it is for ``f``; else a SolartronError."""
        log.warning("no result for %g Hz after dropping %r: asking the 1260 for its last result again (DO)", f, dropped)
        self.write("DO")
        result = parse_result(self._read_line(f, READ_MARGIN_S))
        if abs(result.frequency_Hz - f) > FREQUENCY_RTOL * f:
            raise SolartronError(f"no result for the point at {f:g} Hz: the 1260's last result is for "
                                 f"{result.frequency_Hz:g} Hz ({result.line!r}); call configure_potentiostatic() to "
                                 "reset it, then trigger again")
        log.warning("the dropped line %r was the point at %g Hz changed on the way; read it again: %r", dropped[-1],
                    f, result.line)
        return result

    def _read_line(self, f: float, timeout_s: float) -> str:
        try:
            with self._timeout(timeout_s):
                return self.read()
        except SolartronTimeout as e:
            raise SolartronTimeout(f"no result for the point at {f:g} Hz within {timeout_s:g} s: the 1260 or its "
                                   "connection failed (an instrument fault, not the cell); check its power and the GPIB "
                                   "cable or gateway, that trigger() was called and that results go to GPIB (OP2,1, "
                                   "set by configure_potentiostatic())") from e


class Solartron1260Analyzer:
    """A Solartron 1260 in labctl's ImpedanceAnalyzer role (``labctl.roles``).

    A separate class rather than methods of the instrument because the role's ``read(frequency_Hz) -> complex``
    would replace PyMeasure's ``Instrument.read() -> str``, through which every query of the driver goes.
    """

    def __init__(self, instrument: Solartron1260) -> None:
        self.instrument = instrument

    def identity(self) -> dict[str, str]:
        """Make, model, serial number and firmware, from ``*IDN?``."""
        return parse_identity(self.instrument.id)

    max_frequency_Hz = FREQUENCY_HZ[1]
    galvanostatic = False  # without a 1287 potentiostat the 1260's generator sets a voltage

    def configure(self, *, amplitude_V: float, dc_bias_V: float = 0.0, integration_time_s: float = 0.1,
                  delay_s: float = 0.0, at_open_circuit: bool = False, current_amplitude_A: float | None = None) -> None:
        """Reset the 1260 and set it up for a potentiostatic spectrum (see configure_potentiostatic); it holds the
        bias itself, at open circuit or not."""
        if current_amplitude_A is not None:
            raise ValueError("current_amplitude_A: the Solartron 1260 alone measures potentiostatically; a "
                             "galvanostatic spectrum needs a potentiostat (an SP-200)")
        self.instrument.configure_potentiostatic(amplitude_V, dc_bias_V, integration_time_s, delay_s)

    def sweep(self, frequencies: Sequence[float], clock: Clock) -> Iterator[tuple[float, complex]]:
        """Step the generator through ``frequencies``: each point is triggered, the clock let run for the time the
        1260 needs (so a simulated bench's time advances exactly that far), and its result read."""
        for f in frequencies:
            self.instrument.trigger(f)
            clock.wait(self.instrument.point_duration_s(f), stop_at_event=False)
            yield f, self.instrument.read_point(f)

    def point_duration_s(self, frequency_Hz: float) -> float:
        return self.instrument.point_duration_s(frequency_Hz)

    def trigger(self, frequency_Hz: float) -> None:
        self.instrument.trigger(frequency_Hz)

    def read(self, frequency_Hz: float) -> complex:
        return self.instrument.read_point(frequency_Hz)

    def close(self) -> None:
        """End a point in progress (the generator stops driving the cell), then close the connection (the 1260
        keeps its settings). A 1260 that cannot be reached is logged: closing never fails."""
        try:
            self.instrument.stop()
        except SolartronError as e:
            log.error("could not end the point in progress on the 1260 (%s); end it on its front panel", e)
        finally:
            self.instrument.adapter.close()
