"""One emulated BioLogic SP-200 channel: runs an EClib technique sequence on a shared virtual cell in bench time.

The engine behind the fake EClib, in plain Python: ``load_technique`` builds the sequence (``first`` starts one,
``last`` closes it; sp200_techniques.py checks the labels), ``start``/``stop`` switch RUN and STOP, and while it runs
the channel is a participant of the bench's :class:`~labctl.sim_instruments.clock.VirtualClock`, landing exactly on
step ends, record times and EIS points. ``get_data`` is BL_GetData (rows of one technique and process per chunk, at
most ``max_words`` 32-bit words), ``current_values`` BL_GetCurrentValues.

The SP-200 drives the cell through the terminals a DC-biased analyzer uses (sim_instruments/dc_bias.py): a voltage
set-point is held as the bias (its current clamped to the I range: then the bias is the voltage at the clamp), a
current set-point as the voltage that passes it, and each substep is integrated with ``pass_bias``, so a cycler
channel on the same cell (which integrates its idle rest lazily) counts no second twice. At open circuit (OCV, PEIS
at the starting potential, GEIS at 0 A) it holds nothing and integrates the rest itself, unless another emulator is
running on the cell, whose current then flows.

The cells do not record who drives them, so the channel looks for another running emulator on its cell among the
clock's participants (a running Arbin channel is one: ``cell``, ``running``, ``current_A``). While one runs,
``start`` refuses a sequence that sets a DC level of its own (CA, CP, CALIMIT, CPLIMIT, EIS off open circuit) with
:class:`CellHeld` (-9); OCV and open-circuit EIS may measure (a cycler resting while the SP-200 measures).

Limits are checked on the noise-free Ewe and the set current after every substep; rows carry the measured Ewe.
Not modelled: the channel's memory limit, compliance voltage, and the rest of a cell only an idle SP-200 is on.
"""

from __future__ import annotations

import cmath
import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from labctl.sim_instruments.cell import BiasedCell, HoldableCell
from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.sp200_techniques import (
    ERR_CHANNEL_RUNNING,
    ERR_FUNCTION_FAILED,
    ERR_INVALID_PARAMETERS,
    TIME_TOLERANCE_S,
    CellHeld,
    Column,
    Eis,
    Loop,
    Ocv,
    Sampler,
    Steps,
    Technique,
    TechniqueRefused,
    columns,
    parse,
    point_duration_s,
    technique_id,
    words,
)

STOP, RUN = 0, 1  # TChannelState_e
NEXT_TECHNIQUE, STOP_EXPERIMENT = 1, 2  # a technique's exit, as Exit_Cond numbers it
DATA_BUFFER_WORDS = 1000  # BL_GetData's buffer: 1000 32-bit words


class PotentiostatCell(HoldableCell, BiasedCell, Protocol):
    """What the SP-200 drives and measures: voltage, current_at, hold_bias/pass_bias and measured_impedance."""


class _Driver(Protocol):
    """Another emulator running on the cell (an Arbin channel), as seen among the clock's participants."""

    @property
    def current_A(self) -> float: ...


class _Key(NamedTuple):
    technique_index: int
    technique_id: int
    process_index: int
    loop: int
    start_time_s: float
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class DataChunk:
    """One BL_GetData's worth: ``rows`` of one technique and process, values in ``columns`` order (a "time" column
    is seconds since start, two words t_high/t_low on the wire; EIS process 1's ``t`` is one single)."""

    technique_index: int
    technique_id: int
    process_index: int
    loop: int  # how many times a LOOP had gone back when the rows were recorded
    start_time_s: float  # when this run of the technique began, s since start
    columns: tuple[Column, ...]
    rows: tuple[tuple[float, ...], ...]

    @property
    def words(self) -> int:
        return len(self.rows) * words(self.columns)


@dataclass(frozen=True)
class CurrentValues:
    state: int  # STOP 0, RUN 1
    ewe_V: float  # measured
    i_A: float  # the current the SP-200 passes
    elapsed_s: float
    mem_filled_bytes: int  # recorded, not yet read
    freq_Hz: float  # the EIS frequency being measured, else 0
    technique_index: int


class SP200Channel:
    """An SP-200 channel with ``cell`` connected, living on ``clock``. Public methods take the clock's lock."""

    def __init__(self, clock: VirtualClock, cell: PotentiostatCell) -> None:
        self.cell = cell
        self._clock = clock
        self._sequence: list[Technique] = []
        self._sealed = False  # the sequence's last technique is loaded
        self.state = STOP
        self.current_A = 0.0  # what the channel passes
        self._run: _OcvRun | _StepsRun | _EisRun | None = None
        self._index = 0
        self._mode: tuple[str, float, float] | None = None  # ("E" or "I", set-point, |I| clamp); None: open circuit
        self._driver: _Driver | None = None
        self._t0 = self._t_stop = 0.0
        self._technique_start = 0.0
        self._loops: dict[int, int] = {}  # LOOP index -> times gone back so far
        self._passes = 0
        self._pending: deque[tuple[_Key, tuple[float, ...]]] = deque()
        self._pending_words = 0

    @property
    def running(self) -> bool:
        return self.state == RUN

    @property
    def elapsed_s(self) -> float:
        return self._clock.now - self._t0 if self.state == RUN else self._t_stop

    # --- EClib operations ---

    def load_technique(self, name: str, params: dict[str, object], *, first: bool, last: bool) -> None:
        """Add technique ``name`` with ``params`` (ECC label -> value) to the sequence; ``first`` starts a new one,
        ``last`` closes it. TechniqueRefused on what EClib refuses."""
        with self._clock.lock:
            if self.state == RUN:
                raise TechniqueRefused(ERR_CHANNEL_RUNNING, "the channel is running; stop it before loading")
            technique = parse(name, params)
            if not first and (self._sealed or not self._sequence):
                raise TechniqueRefused(ERR_INVALID_PARAMETERS, "first=False continues an open sequence, and there is "
                                       "none (none loaded, or the last one was loaded with last=True)")
            sequence = [] if first else self._sequence
            if isinstance(technique, Loop) and technique.goto >= len(sequence):
                raise TechniqueRefused(ERR_INVALID_PARAMETERS, f"LOOP protocol_number {technique.goto} must name an "
                                       f"earlier technique (0..{len(sequence) - 1})")
            self._sequence = [*sequence, technique]
            self._sealed = last

    def start(self) -> None:
        """Run the loaded sequence from its first technique; CellHeld if another emulator drives the cell."""
        with self._clock.lock:
            if self.state == RUN:
                raise TechniqueRefused(ERR_CHANNEL_RUNNING, "the channel is already running")
            if not self._sealed:
                raise TechniqueRefused(ERR_FUNCTION_FAILED, "no complete sequence loaded (its last technique is "
                                       "loaded with last=True)")
            driver = self._find_driver()
            setting = [t.name for t in self._sequence if isinstance(t, Steps) or (isinstance(t, Eis) and
                                                                                  not t.open_circuit)]
            if driver is not None and setting:
                raise CellHeld(f"another instrument ({type(driver).__name__}) is driving the cell; "
                               f"{', '.join(setting)} would drive it too (only OCV and open-circuit EIS may share it)")
            self._driver = driver
            self.state, self._t0 = RUN, self._clock.now
            self._loops, self._passes = {}, 0
            self._clock.register(self)
            self._enter(0)

    def stop(self) -> None:
        """Stop the sequence: current off, the cell let go, state STOP. Recorded rows stay readable."""
        with self._clock.lock:
            if self.state == RUN:
                self._finish()

    def get_data(self, max_words: int = DATA_BUFFER_WORDS) -> DataChunk | None:
        """The oldest recorded rows of one technique and process that fit ``max_words``; None when none wait."""
        with self._clock.lock:
            if not self._pending:
                return None
            key = self._pending[0][0]
            per_row = words(key.columns)
            if max_words < per_row:
                raise ValueError(f"max_words {max_words} is less than one row ({per_row} words)")
            rows = []
            while self._pending and self._pending[0][0] == key and (len(rows) + 1) * per_row <= max_words:
                rows.append(self._pending.popleft()[1])
            self._pending_words -= len(rows) * per_row
            return DataChunk(*key[:5], key.columns, tuple(rows))

    def current_values(self) -> CurrentValues:
        with self._clock.lock:
            if self.state != RUN:
                self._driver = self._find_driver()
            frequency = self._run.frequency_Hz if isinstance(self._run, _EisRun) else 0.0
            return CurrentValues(self.state, self.cell.measured_voltage(self._cell_current()), self.current_A,
                                 self.elapsed_s, 4 * self._pending_words, frequency, self._index)

    # --- clock participant ---

    def max_step(self) -> float:
        """Seconds to the next step end, record time or EIS point; notes who else drives the cell now."""
        if self._run is None:
            return math.inf
        self._driver = self._find_driver()
        return max(self._run.max_step(), 0.0)

    def advance(self, dt: float) -> bool:
        """Integrate ``dt`` seconds; True if a step, technique or EIS point ended."""
        if self._run is None:
            return False
        if self._mode is not None or self._driver is None:
            self.cell.pass_bias(dt)
        self._apply()
        event = self._run.advance()
        while self._run is not None and self._run.exit:
            if self._run.exit == STOP_EXPERIMENT:
                self._finish()
            else:
                self._enter(self._index + 1)
        return event

    # --- the sequence ---

    def _enter(self, index: int) -> None:
        """Start technique ``index``, after any LOOPs (which take no time); finish after the last one."""
        while index < len(self._sequence):
            technique = self._sequence[index]
            if not isinstance(technique, Loop):
                self._index, self._technique_start = index, self.elapsed_s
                self._run = (_OcvRun(self, technique) if isinstance(technique, Ocv) else
                             _StepsRun(self, technique) if isinstance(technique, Steps) else _EisRun(self, technique))
                return
            gone_back = self._loops.get(index, 0)
            if gone_back < technique.times:
                self._loops[index], self._passes = gone_back + 1, self._passes + 1
                index = technique.goto
            else:
                self._loops[index] = 0  # an outer loop that comes back here runs this one in full again
                index += 1
        self._finish()

    def _finish(self) -> None:
        self._set_mode(None)
        self._run = None
        self._t_stop = self.elapsed_s
        self.state = STOP
        self._clock.unregister(self)

    def _record(self, process: int, row: tuple[float, ...]) -> None:
        technique = self._sequence[self._index]
        key = _Key(self._index, technique_id(technique), process, self._passes, self._technique_start,
                   columns(technique, process))
        self._pending.append((key, row))
        self._pending_words += words(key.columns)

    # --- the terminals ---

    def _set_mode(self, mode: tuple[str, float, float] | None) -> None:
        """Control ``mode`` (("E" or "I", set-point, |I| clamp)), or let the cell go (None: open circuit)."""
        if mode is None and self._mode is not None:
            self.cell.hold_bias(None)
            self.current_A = 0.0
        self._mode = mode
        self._apply()

    def _apply(self) -> None:
        """Hold the bias that keeps the set-point in the cell's present state."""
        if self._mode is None:
            return
        kind, setpoint, clamp = self._mode
        if kind == "I":
            self.current_A = setpoint
            self.cell.hold_bias(self.cell.voltage(setpoint))
            return
        held = self.cell.current_at(setpoint)
        self.current_A = max(-clamp, min(clamp, held))
        self.cell.hold_bias(setpoint if self.current_A == held else self.cell.voltage(self.current_A))

    def _cell_current(self) -> float:
        """The current through the cell: the SP-200's, or at open circuit another running emulator's."""
        if self._mode is not None or self._driver is None:
            return self.current_A
        return self._driver.current_A

    def _ewe(self) -> float:
        return self.cell.voltage(self._cell_current())

    def _measured_ewe(self) -> float:
        return self.cell.measured_voltage(self._cell_current())

    def _find_driver(self) -> _Driver | None:
        for p in self._clock.participants:  # running emulators are the clock's participants (arbin_channel.py)
            if p is not self and getattr(p, "cell", None) is self.cell and getattr(p, "running", False):
                return p  # type: ignore[return-value]
        return None


class _OcvRun:
    """OCV: open circuit for Rest_time_T, a row every dT or dE."""

    def __init__(self, ch: SP200Channel, spec: Ocv) -> None:
        self.ch, self.exit = ch, 0
        ch._set_mode(None)
        self._end = ch.elapsed_s + spec.rest_s
        self._sampler = Sampler(spec.record_dT, spec.record_dE)
        self._sample(force=True)

    def max_step(self) -> float:
        t = self.ch.elapsed_s
        return min(self._end - t, self._sampler.due_in(t))

    def advance(self) -> bool:
        done = self.ch.elapsed_s >= self._end - TIME_TOLERANCE_S
        self._sample(force=done)
        self.exit = NEXT_TECHNIQUE if done else 0
        return done

    def _sample(self, force: bool) -> None:
        ch = self.ch
        if self._sampler.take(ch.elapsed_s, ch._ewe(), force):
            ch._record(0, (ch.elapsed_s, ch._measured_ewe()))


class _StepsRun:
    """CA/CP/CALIMIT/CPLIMIT: each step until its duration or a limit (then Exit_Cond), N_Cycles + 1 times."""

    def __init__(self, ch: SP200Channel, spec: Steps) -> None:
        self.ch, self.spec, self.exit = ch, spec, 0
        self._reference = ch._ewe() if spec.control == "E" else ch.current_A  # what vs_initial steps are relative to
        self._cycle = 0
        self._enter(0)

    def _enter(self, k: int) -> None:
        ch, spec = self.ch, self.spec
        self._k, step = k, spec.steps[k]
        ch._set_mode((spec.control, step.value + (self._reference if step.vs_initial else 0.0), spec.max_current_A))
        self._end = ch.elapsed_s + step.duration_s
        self._sampler = Sampler(spec.record_dT, spec.record_dX)
        self._sample(force=True)

    def max_step(self) -> float:
        t = self.ch.elapsed_s
        return min(self._end - t, self._sampler.due_in(t))

    def advance(self) -> bool:
        step = self.spec.steps[self._k]
        if step.limit_hit(self.ch._ewe(), self.ch.current_A):
            self._sample(force=True)
            return self._leave(step.exit_cond)
        if self.ch.elapsed_s >= self._end - TIME_TOLERANCE_S:
            self._sample(force=True)
            return self._leave(0)
        self._sample(force=False)
        return False

    def _leave(self, exit_cond: int) -> bool:
        if exit_cond:
            self.exit = exit_cond
            return True
        k = self._k + 1
        if k == len(self.spec.steps):
            k, self._cycle = 0, self._cycle + 1
            if self._cycle > self.spec.cycles:
                self.exit = NEXT_TECHNIQUE
                return True
        self._enter(k)
        return True

    def _sample(self, force: bool) -> None:
        ch = self.ch
        watched = ch._ewe() if self.spec.control == "I" else ch.current_A  # dE (CP) or dI (CA)
        if self._sampler.take(ch.elapsed_s, watched, force):
            ch._record(0, (ch.elapsed_s, ch._measured_ewe(), ch.current_A, self._cycle))


class _EisRun:
    """PEIS/GEIS: the DC level for Duration_step (process 0 rows), then one process 1 row per frequency."""

    def __init__(self, ch: SP200Channel, spec: Eis) -> None:
        self.ch, self.spec, self.exit = ch, spec, 0
        if spec.open_circuit:
            ch._set_mode(None)
        else:
            reference = ch._ewe() if spec.control == "E" else ch.current_A
            ch._set_mode((spec.control, spec.dc + (reference if spec.vs_initial else 0.0), spec.max_current_A))
        self._wait_end = ch.elapsed_s + spec.duration_s
        self._sampler = Sampler(spec.record_dT, spec.record_dX)
        self._k = 0
        self._point_end = self._wait_end + self._point_s()
        if spec.duration_s > 0:
            self._sample(force=True)

    @property
    def frequency_Hz(self) -> float:
        return self.spec.frequencies[self._k] if self.ch.elapsed_s >= self._wait_end else 0.0

    def _point_s(self) -> float:
        return point_duration_s(self.spec.frequencies[self._k], self.spec.average, self.spec.wait_periods)

    def max_step(self) -> float:
        t = self.ch.elapsed_s
        if t < self._wait_end - TIME_TOLERANCE_S:
            return min(self._wait_end - t, self._sampler.due_in(t))
        return self._point_end - t

    def advance(self) -> bool:
        ch, spec = self.ch, self.spec
        t = ch.elapsed_s
        if t < self._wait_end - TIME_TOLERANCE_S:
            self._sample(force=False)
            return False
        if t < self._point_end - TIME_TOLERANCE_S:
            return False
        f = spec.frequencies[self._k]
        z = ch.cell.measured_impedance(f)
        abs_e, abs_i = (spec.amplitude, spec.amplitude / abs(z)) if spec.control == "E" else (spec.amplitude * abs(z),
                                                                                              spec.amplitude)
        # freq, |Ewe|, |I|, Phase_Zwe (rad), Ewe, I, -, |Ece|, |Ice|, Phase_Zce, Ece, -, -, t: two electrodes, Ece = 0
        ch._record(1, (f, abs_e, abs_i, cmath.phase(z), ch._measured_ewe(), ch.current_A, 0, 0.0, abs_i, 0.0, 0.0, 0,
                       0, t))
        self._k += 1
        if self._k == len(spec.frequencies):
            self.exit = NEXT_TECHNIQUE
        else:
            self._point_end += self._point_s()
        return True

    def _sample(self, force: bool) -> None:
        ch = self.ch
        watched = ch.current_A if self.spec.control == "E" else ch._ewe()  # dI (PEIS) or dE (GEIS)
        if self._sampler.take(ch.elapsed_s, watched, force):
            ch._record(0, (ch.elapsed_s, ch._measured_ewe(), ch.current_A))
