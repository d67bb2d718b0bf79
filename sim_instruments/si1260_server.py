"""A Solartron 1260 impedance analyzer, emulated on 127.0.0.1, measuring a virtual cell on the bench's clock.

Clients reach it as a GPIB-Ethernet gateway would be reached: raw TCP, PyVISA ``TCPIP::127.0.0.1::PORT::SOCKET``.
The wire contract (research/instruments.md §2):

- ASCII commands, one per line, ended by CR LF (a bare LF is accepted too); mnemonics are case-insensitive,
  spaces between mnemonic and value optional, numbers in any float notation (``FR 1.0E3``, ``FR1000``), two
  values separated by a comma (``RA 1,0``). Replies and results end with CR LF.
- What the instrument rejects gets no reply line: an unknown mnemonic or malformed command sets the
  command-error bit (32) of the event status register, a value out of range or a setting the emulator does not
  support (``GT1``, a source ratio that is not an impedance) the execution-error bit (16). ``*ESR?`` reads and
  clears the register; ``*CLS`` clears it.
- The manual's IEEE 488 commands: ``*ESE n``/``*ESE?`` and ``*SRE n``/``*SRE?`` (enable registers, 0 .. 255),
  ``*STB?`` (status byte, unchanged by reading: MAV 16 a line was output after the query came in, ESB 32 an
  enabled event bit is set, MSS 64 an enabled summary bit is set), ``*OPC`` (sets bit 1 of the event status
  register: the emulator is idle whenever it executes it), ``*OPC?`` (``1``), ``*TST?`` (``1``: the manual's
  "pass"; ``0`` would be "fail").
- ``SI`` starts a single measurement of the cell's impedance at ``FR``. It takes ``MS + max(IS, 3/FR)``
  seconds of bench time; then, if ``OP2,1`` is set, the instrument outputs the manual's record
  ``frequency,Z',Z'',0,00`` (``CZ0``) or ``frequency,|Z|,phase_deg,0,00`` (``CZ1``): the frequency with 8
  significant digits (``%+.7E``), the two parameters with 5 (``%+.4E``), 43 characters in all.
  A result nobody reads stays queued in the connection, so a client that triggers again reads the old line
  first. ``DO`` outputs the last result again.
- Commands are handled in order: while a point is measured, later commands (queries, settings, another ``SI``)
  wait, and run after its result line is output. The break commands ``BK``, ``*RST``, ``TT1`` and ``TT2`` end
  the point in progress when they arrive (no result); the commands queued before them then run in order.

Power-on state (``TT1`` or ``TT2``): FR 1 kHz, VA 0 V, VB 0 V, GT0, IS 1 s, MS 0 s, all ranges auto (0), DC
coupling, SO1,3, CZ0, UW0, results not output (OP2,0), no last result. The status registers are kept.

While a measurement is pending the emulator is a participant of the bench's
:class:`~labctl.sim_instruments.clock.VirtualClock`: a stepped clock lands exactly on the moment the result is
due, and a free-running clock delivers it in wall time. ``SI`` has no reply, so a client steps the clock right
after sending it: input is taken in only with the clock's lock held, and after each output line the client's
connection is a participant until the clock next moves, taking in whatever the client sent meanwhile first,
so an ``SI`` already on the socket starts before the time the client waits (not after it).

While a measurement is pending the generator holds the cell at the DC bias ``VB`` (no potentiostat: the 1260 applies
its own bias), so a cell with a DC model (:class:`BiasedCell`) carries the current ``current_at(VB)`` for the
measurement's duration and its state moves: none at its open-circuit voltage, a large one on a half or full cell
biased at 0 V. A DC current beyond the current input's highest range (60 mA) is logged as an overload. Time the
cycler channel on the same cell also integrates is counted once (sim_instruments/dc_bias.py).
"""

from __future__ import annotations

import cmath
import logging
import math
import re
import select
import selectors
import socket
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from labctl.sim_instruments.cell import BiasedCell, ImpedanceCell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.tcp import TcpServer

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

IDN = "1260 IMPEDANCE ANALYZER, SOLARTRON, 0, 0"
SELF_TEST_PASSED = "1"  # *TST?: the manual's "1" for pass ("0" for fail), not IEEE 488.2's 0
# Event status register bits (IEEE 488.2)
OPERATION_COMPLETE = 1
QUERY_ERROR = 4  # a reply was lost because the client does not read
EXECUTION_ERROR = 16
COMMAND_ERROR = 32
# Status byte bits (IEEE 488.2)
MESSAGE_AVAILABLE = 16  # MAV
EVENT_SUMMARY = 32  # ESB
MASTER_SUMMARY = 64  # MSS
REGISTER_RANGE = (0, 255)  # what *ESE and *SRE take
BREAKS = {"BK", "*RST", "TT"}  # end the point in progress when they arrive
# The manual's result record: frequency to 8 significant digits (14 characters), parameters to 5 (11 characters).
FREQUENCY_FORMAT, PARAMETER_FORMAT = "+.7E", "+.4E"
READ_CHUNK_BYTES = 4096
MAX_LINE_BYTES = 1024  # far longer than any command; a longer line is a command error
# A result counts as due this close to its time: within rounding of summed substeps, and within 1 ppm so that a
# client waiting the duration of the frequency it meant finds the result of the frequency its 8-significant-digit
# number sent.
DUE_TOLERANCE_S = 1e-9
DUE_TOLERANCE_RELATIVE = 1e-6
FREQUENCY_RANGE_HZ = (10e-6, 32e6)
HIGH_FREQUENCY_HZ = 10e6  # above it the generator gives at most 1 V rms
AMPLITUDE_RANGE_V = (0.0, 3.0)
HIGH_FREQUENCY_AMPLITUDE_V = 1.0
BIAS_RANGE_V = (-40.95, 40.95)
INTEGRATION_RANGE_S = (0.01, 1e5)
DELAY_RANGE_S = (0.0, 1e5)
INPUT_RANGES = {1: range(4), 2: range(4), 3: range(6)}  # V1, V2: auto, 30 mV, 300 mV, 3 V; I: auto, 6 µA..60 mA
CURRENT_INPUT_MAX_A = 60e-3  # the current input's highest range: a larger DC current overloads it
IMPEDANCE_SOURCES = {(1, 3), (2, 3)}  # V1/I, V2/I

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_COMMAND = re.compile(r"[ \t]*(\*[A-Za-z]{3}\??|[A-Za-z]{2})[ \t]*(.*?)[ \t]*")


class CommandError(ValueError):
    """Unknown mnemonic or malformed command (ESR bit 32)."""


class ExecutionError(ValueError):
    """Well-formed command with a value out of range or not supported (ESR bit 16)."""


@dataclass
class Settings:
    """The analyzer's settings, at their power-on values (what ``TT2`` restores)."""

    frequency_Hz: float = 1000.0
    amplitude_V: float = 0.0  # rms
    bias_V: float = 0.0
    generator: int = 0  # GT: 0 voltage
    integration_s: float = 1.0
    delay_s: float = 0.0
    coordinates: int = 0  # CZ: 0 rectangular, 1 polar
    unwrap: int = 0
    source: tuple[int, int] = (1, 3)
    output_gpib: bool = False  # OP2,1: results go out on the bus (here: the connection)
    terminator: int = 0  # OT; CR LF either way on a socket (OT1 adds EOI on GPIB)
    input_range: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})
    coupling: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0, 3: 0})  # DC: 0 DC, 1 AC
    input_mode: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})  # IP, no effect here
    outer: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})  # OU, no effect here

    def measurement_time_s(self) -> float:
        """Seconds one single measurement takes: the delay, then at least three periods of integration."""
        return self.delay_s + max(self.integration_s, 3.0 / self.frequency_Hz)


class _Measurement:
    """A single measurement in progress: a participant of the bench clock until its result is due."""

    def __init__(self, emulator: Si1260Emulator, frequency_Hz: float, duration_s: float, conn: _Link):
        self.frequency_Hz = frequency_Hz
        self.remaining_s = duration_s
        self.tolerance_s = DUE_TOLERANCE_S + DUE_TOLERANCE_RELATIVE * duration_s
        self.conn = conn  # the connection that triggered it gets the result
        self._emulator = emulator

    def max_step(self) -> float:
        return max(self.remaining_s, 0.0)

    def advance(self, dt: float) -> bool:
        self.remaining_s -= dt
        self._emulator._pass_bias(dt)
        if self.remaining_s > self.tolerance_s:
            return False
        self._emulator._complete(self)
        return True


class _Link:
    """One client's connection: input not yet made into commands, and the lines output to it.

    After each output line it is a participant of the clock until the clock next moves, so that what the client
    sent in answer (an ``SI`` right before it steps the clock) is taken in before any time passes.
    """

    def __init__(self, emulator: Si1260Emulator, conn: socket.socket) -> None:
        self.conn = conn
        self.pending = b""  # received, not yet a whole line
        self.discarding = False  # the rest of an over-long line, already flagged
        self.open = True
        self.outputs = 0  # lines output to this client so far
        self.outputs_seen = 0  # ... when the command being executed came in: later ones are unread (MAV)
        self._emulator = emulator

    def max_step(self) -> float:
        self._emulator.clock.unregister(self)
        self._emulator._take_input(self)  # a measurement this starts joins the clock, which bounds the step again
        return math.inf

    def advance(self, dt: float) -> bool:
        return False


Handler = Callable[[list[float], _Link], str | None]


class Si1260Emulator(TcpServer):
    """A Solartron 1260 on 127.0.0.1:``port`` (0 picks a free port) measuring ``cell`` on ``clock``.

    The instrument is one: its settings, status register and last result are shared by every connection;
    replies and results go to the connection that asked. All state is guarded by the clock's lock.
    """

    def __init__(self, clock: VirtualClock, cell: ImpedanceCell, *, port: int = 0) -> None:
        self.clock = clock
        self.cell = cell
        self.settings = Settings()
        self.event_status = 0
        self.event_enable = 0  # *ESE
        self.service_enable = 0  # *SRE
        self.last_result: tuple[float, complex] | None = None  # (frequency Hz, Z ohm)
        self._queue: deque[tuple[_Link, bytes, int]] = deque()  # commands waiting: link, line, its outputs then
        self.dc_current_A = 0.0  # the DC current the bias drives through the cell now (BiasedCell only)
        self._dc_path = cell if isinstance(cell, BiasedCell) else None
        self._pending: _Measurement | None = None
        self._commands: dict[str, tuple[int, Handler]] = {
            "*IDN?": (0, lambda a, c: IDN),
            "*RST": (0, self._break),
            "BK": (0, self._break),
            "*CLS": (0, self._clear_status),
            "*ESR?": (0, self._read_status),
            "*ESE": (1, self._set_event_enable),
            "*ESE?": (0, lambda a, c: str(self.event_enable)),
            "*SRE": (1, self._set_service_enable),
            "*SRE?": (0, lambda a, c: str(self.service_enable)),
            "*STB?": (0, self._status_byte),
            "*OPC": (0, self._operation_complete),
            "*OPC?": (0, lambda a, c: "1"),  # in order: every earlier operation is complete when it runs
            "*TST?": (0, lambda a, c: SELF_TEST_PASSED),
            "TT": (1, self._reset),
            "OS": (1, self._accept("OS (output separator)", {0})),
            "OT": (1, self._set_terminator),
            "OP": (2, self._set_output),
            "RH": (1, self._accept("RH (result heading)", {0})),
            "SW": (1, self._accept("SW (sweep)", {0})),
            "ME": (1, self._accept("ME (monitor)", {0})),
            "BP": (1, self._accept("BP (error beep)", {0})),
            "AU": (1, self._accept("AU (auto-integration)", {0})),
            "CE": (0, lambda a, c: None),  # clears the front-panel error display, not the status register
            "FR": (1, self._set_frequency),
            "VA": (1, self._set_amplitude),
            "VB": (1, self._set_bias),
            "GT": (1, self._set_generator),
            "IS": (1, self._set_integration),
            "MS": (1, self._set_delay),
            "RA": (2, self._set_range),
            "DC": (2, self._per_channel("DC (coupling)", "coupling", {1, 2, 3})),
            "IP": (2, self._per_channel("IP (input mode)", "input_mode", {1, 2})),
            "OU": (2, self._per_channel("OU (outer BNC)", "outer", {1, 2})),
            "SO": (2, self._set_source),
            "CZ": (1, self._set_coordinates),
            "UW": (1, self._set_unwrap),
            "SI": (0, self._single),
            "DO": (0, self._output_last),
        }
        super().__init__(port, name="si1260")

    def close(self) -> None:
        super().close()  # first: a client's last input (an SI) is taken in before its connection ends
        with self.clock.lock:
            self._cancel()
            self._queue.clear()

    # --- transport ---

    def handle(self, conn: socket.socket) -> None:
        link = _Link(self, conn)
        try:
            while link.open:
                select.select([conn], [], [])  # wait without the lock; take the input in with it
                with self.clock.lock:
                    self._take_input(link)
        finally:
            with self.clock.lock:
                self.clock.unregister(link)

    def _take_input(self, link: _Link) -> bool:
        """Take in what ``link`` has received, never waiting (the clock's lock is held); whether there was any."""
        took = False
        while link.open:
            try:
                chunk = link.conn.recv(READ_CHUNK_BYTES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:  # the server closed the connection
                chunk = b""
            if not chunk:
                link.open = False
                break
            _acknowledge_now(link.conn)
            self._receive(link, chunk)
            took = True
        return took

    def _receive(self, link: _Link, chunk: bytes) -> None:
        link.pending += chunk
        while (end := link.pending.find(b"\n")) >= 0:
            line, link.pending = link.pending[: end + 1], link.pending[end + 1 :]
            if not link.discarding:
                self._arrive(link, line)
            link.discarding = False
        if len(link.pending) > MAX_LINE_BYTES and not link.discarding:
            self._flag(COMMAND_ERROR, f"a command longer than {MAX_LINE_BYTES} bytes")
            link.discarding = True
        if link.discarding:
            link.pending = b""

    def _arrive(self, link: _Link, raw: bytes) -> None:
        """Queue a command line behind those waiting for the point in progress (the 1260 works in order); a
        break ends that point at once."""
        if self._pending is not None and _is_break(raw):
            self._cancel()
        self._queue.append((link, raw, link.outputs))
        self._run_queue()

    def _run_queue(self) -> None:
        """Execute the queued commands in order, until one starts a measurement."""
        while self._queue and self._pending is None:
            link, raw, outputs = self._queue.popleft()
            link.outputs_seen = outputs
            self._execute(raw, link)

    def _execute(self, raw: bytes, conn: _Link) -> None:
        line = raw[:-1].removesuffix(b"\r")
        if len(line) > MAX_LINE_BYTES:
            self._flag(COMMAND_ERROR, f"a command longer than {MAX_LINE_BYTES} bytes")
            return
        if not line.strip():
            return
        try:
            mnemonic, args = _parse(line)
            entry = self._commands.get(mnemonic)
            if entry is None:
                raise CommandError(f"unknown mnemonic {mnemonic!r}")
            arity, handler = entry
            if len(args) != arity:
                raise CommandError(f"{mnemonic} takes {arity} value(s), got {len(args)}")
            reply = handler(args, conn)
        except CommandError as e:
            self._flag(COMMAND_ERROR, f"{line!r}: {e}")
            return
        except ExecutionError as e:
            self._flag(EXECUTION_ERROR, f"{line!r}: {e}")
            return
        if reply is not None:
            self._send(conn, reply)

    def _flag(self, bit: int, why: str) -> None:
        self.event_status |= bit
        log.warning("1260 emulator: %s (event status bit %d set)", why, bit)

    def _send(self, link: _Link, line: str) -> None:
        """Queue ``line`` to the client without ever blocking the bench (the clock's lock is held)."""
        try:
            if not _writable(link.conn):
                self._flag(QUERY_ERROR, f"output lost, the client does not read its replies: {line!r}")
                return
            link.conn.sendall(line.encode("ascii") + b"\r\n")
        except (OSError, ValueError):  # ValueError: the socket is already closed (no file descriptor)
            log.debug("1260 emulator: the client left before its output %r", line)
            return
        link.outputs += 1
        self.clock.register(link)  # take in the client's answer before the clock next moves

    # --- measurement ---

    def _single(self, args: list[float], conn: _Link) -> None:
        self._cancel()
        s = self.settings
        self._pending = _Measurement(self, s.frequency_Hz, s.measurement_time_s(), conn)
        self.clock.register(self._pending)
        self._hold_bias(s.bias_V)

    def _complete(self, measurement: _Measurement) -> None:
        """The result is due (called by the clock, with its lock held)."""
        self.clock.unregister(measurement)
        self._pending = None
        self.last_result = (measurement.frequency_Hz, self.cell.measured_impedance(measurement.frequency_Hz))
        self._hold_bias(None)
        if self.settings.output_gpib:
            self._send(measurement.conn, self._result_line(*self.last_result))
        self._run_queue()  # the commands that came in during the point, after its result

    def _cancel(self) -> None:
        if self._pending is not None:
            self.clock.unregister(self._pending)
            self._pending = None
            self._hold_bias(None)

    def _hold_bias(self, bias_V: float | None) -> None:
        """Hold the cell at ``bias_V`` while measuring (None: let go), noting the DC current it draws."""
        if self._dc_path is None:
            return
        self.dc_current_A = self._dc_path.hold_bias(bias_V)
        if abs(self.dc_current_A) > CURRENT_INPUT_MAX_A:
            log.warning("1260 emulator: VB %+.4g V drives %+.4g mA DC through the cell, beyond the current input's "
                        "%g mA range (overload); bias at the cell's open-circuit voltage", bias_V,
                        1e3 * self.dc_current_A, 1e3 * CURRENT_INPUT_MAX_A)

    def _pass_bias(self, dt: float) -> None:
        if self._dc_path is not None:
            self._dc_path.pass_bias(dt)

    def _output_last(self, args: list[float], conn: _Link) -> None:
        if self.last_result is None:
            raise ExecutionError("no result to output yet; trigger one with SI")
        if self.settings.output_gpib:
            self._send(conn, self._result_line(*self.last_result))

    def _result_line(self, frequency_Hz: float, z: complex) -> str:
        if self.settings.coordinates == 0:
            a, b = z.real, z.imag
        else:
            a, b = abs(z), math.degrees(cmath.phase(z))
        return f"{frequency_Hz:{FREQUENCY_FORMAT}},{a:{PARAMETER_FORMAT}},{b:{PARAMETER_FORMAT}},0,00"

    # --- status and reset ---

    def _break(self, args: list[float], conn: _Link) -> None:
        self._cancel()

    def _clear_status(self, args: list[float], conn: _Link) -> None:
        self.event_status = 0

    def _read_status(self, args: list[float], conn: _Link) -> str:
        value, self.event_status = self.event_status, 0
        return str(value)

    def _set_event_enable(self, args: list[float], conn: _Link) -> None:
        self.event_enable = _register(args[0], "*ESE (event status enable)")

    def _set_service_enable(self, args: list[float], conn: _Link) -> None:
        self.service_enable = _register(args[0], "*SRE (service request enable)") & ~MASTER_SUMMARY

    def _status_byte(self, args: list[float], conn: _Link) -> str:
        """IEEE 488.2: MAV if a line went out after this query came in, ESB, then MSS over the enabled bits."""
        status = MESSAGE_AVAILABLE if conn.outputs > conn.outputs_seen else 0
        if self.event_status & self.event_enable:
            status |= EVENT_SUMMARY
        if status & self.service_enable:
            status |= MASTER_SUMMARY
        return str(status)

    def _operation_complete(self, args: list[float], conn: _Link) -> None:
        self.event_status |= OPERATION_COMPLETE  # commands run in order: everything before is complete

    def _reset(self, args: list[float], conn: _Link) -> None:
        _choice(args[0], {1, 2}, "TT (1 or 2: reset)")  # both reset; the manual lists no difference on the bus
        self._cancel()
        self.settings = Settings()
        self.last_result = None

    # --- settings ---

    @staticmethod
    def _accept(what: str, allowed: Collection[int]) -> Handler:
        """A setting the emulator accepts at the value(s) a driver uses and otherwise ignores."""

        def handler(args: list[float], conn: _Link) -> None:
            _choice(args[0], allowed, what)

        return handler

    def _set_terminator(self, args: list[float], conn: _Link) -> None:
        self.settings.terminator = _choice(args[0], {0, 1}, "OT (output terminator)")

    def _set_output(self, args: list[float], conn: _Link) -> None:
        port = _choice(args[0], {1, 2, 3}, "OP port (1 RS-423, 2 GPIB, 3 file)")
        on = _choice(args[1], {0, 1}, "OP mode")
        if port == 2:
            self.settings.output_gpib = on == 1

    def _set_frequency(self, args: list[float], conn: _Link) -> None:
        f = _within(args[0], FREQUENCY_RANGE_HZ, "FR (frequency, Hz)")
        if f > HIGH_FREQUENCY_HZ and self.settings.amplitude_V > HIGH_FREQUENCY_AMPLITUDE_V:
            raise ExecutionError(f"FR {f:g} Hz needs VA <= {HIGH_FREQUENCY_AMPLITUDE_V:g} V rms; "
                                 f"VA is {self.settings.amplitude_V:g}")
        self.settings.frequency_Hz = f

    def _set_amplitude(self, args: list[float], conn: _Link) -> None:
        v = _within(args[0], AMPLITUDE_RANGE_V, "VA (AC amplitude, V rms)")
        if v > HIGH_FREQUENCY_AMPLITUDE_V and self.settings.frequency_Hz > HIGH_FREQUENCY_HZ:
            raise ExecutionError(f"VA above {HIGH_FREQUENCY_AMPLITUDE_V:g} V rms is not available above "
                                 f"{HIGH_FREQUENCY_HZ:g} Hz")
        self.settings.amplitude_V = v

    def _set_bias(self, args: list[float], conn: _Link) -> None:
        self.settings.bias_V = _within(args[0], BIAS_RANGE_V, "VB (DC bias, V)")

    def _set_generator(self, args: list[float], conn: _Link) -> None:
        if _choice(args[0], {0, 1}, "GT (generator type)") == 1:
            raise ExecutionError("GT1 (current generator) is not supported by the emulator; use GT0")
        self.settings.generator = 0

    def _set_integration(self, args: list[float], conn: _Link) -> None:
        self.settings.integration_s = _within(args[0], INTEGRATION_RANGE_S, "IS (integration time, s)")

    def _set_delay(self, args: list[float], conn: _Link) -> None:
        self.settings.delay_s = _within(args[0], DELAY_RANGE_S, "MS (measurement delay, s)")

    def _set_range(self, args: list[float], conn: _Link) -> None:
        channel = _choice(args[0], INPUT_RANGES.keys(), "RA channel (1 V1, 2 V2, 3 I)")
        self.settings.input_range[channel] = _choice(args[1], INPUT_RANGES[channel], f"RA {channel} range")

    def _per_channel(self, what: str, attribute: str, channels: Collection[int]) -> Handler:
        def handler(args: list[float], conn: _Link) -> None:
            channel = _choice(args[0], channels, f"{what} channel")
            getattr(self.settings, attribute)[channel] = _choice(args[1], {0, 1}, what)

        return handler

    def _set_source(self, args: list[float], conn: _Link) -> None:
        source = (_choice(args[0], {1, 2, 3}, "SO numerator"), _choice(args[1], {1, 2, 3}, "SO denominator"))
        if source not in IMPEDANCE_SOURCES:
            raise ExecutionError(f"SO {source[0]},{source[1]} is not an impedance; the emulator measures "
                                 "SO1,3 (V1/I) or SO2,3 (V2/I)")
        self.settings.source = source

    def _set_coordinates(self, args: list[float], conn: _Link) -> None:
        self.settings.coordinates = _choice(args[0], {0, 1}, "CZ (0 rectangular, 1 polar)")

    def _set_unwrap(self, args: list[float], conn: _Link) -> None:
        self.settings.unwrap = _choice(args[0], {0, 1}, "UW (phase unwrap)")


def _parse(line: bytes) -> tuple[str, list[float]]:
    """Mnemonic (upper case) and numeric arguments of one command line."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise CommandError("not ASCII") from None
    m = _COMMAND.fullmatch(text)
    if m is None:
        raise CommandError("not a mnemonic followed by values")
    mnemonic, rest = m[1].upper(), m[2]
    if not rest:
        return mnemonic, []
    values = [v.strip(" \t") for v in rest.split(",")]
    if not all(_NUMBER.fullmatch(v) for v in values):
        raise CommandError(f"values must be numbers separated by a comma, got {rest!r}")
    return mnemonic, [float(v) for v in values]


def _choice(value: float, allowed: Collection[int], what: str) -> int:
    if value not in allowed:
        raise ExecutionError(f"{what} must be one of {', '.join(map(str, sorted(allowed)))}, got {value:g}")
    return int(value)


def _is_break(raw: bytes) -> bool:
    """Whether a command line is one that ends the point in progress when it arrives."""
    try:
        mnemonic, _ = _parse(raw.rstrip(b"\r\n"))
    except CommandError:
        return False
    return mnemonic in BREAKS


def _register(value: float, what: str) -> int:
    low, high = REGISTER_RANGE
    if not (value.is_integer() and low <= value <= high):
        raise ExecutionError(f"{what} takes an integer {low} .. {high}, got {value:g}")
    return int(value)


def _within(value: float, bounds: tuple[float, float], what: str) -> float:
    low, high = bounds
    if not low <= value <= high:
        raise ExecutionError(f"{what} must be within {low:g} .. {high:g}, got {value:g}")
    return value


def _acknowledge_now(conn: socket.socket) -> None:
    """ACK what was received at once (Linux): a client with Nagle's algorithm on (pyvisa-py's default) holds
    each write until the previous one is acknowledged, and commands like FR and SI get no reply to carry the
    ACK, so a delayed ACK would cost ~40 ms per command."""
    if hasattr(socket, "TCP_QUICKACK"):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _writable(conn: socket.socket) -> bool:
    """True if a short write will not block (the client is reading, or its buffer has room)."""
    with selectors.DefaultSelector() as selector:
        selector.register(conn, selectors.EVENT_WRITE)
        return bool(selector.select(timeout=0))
