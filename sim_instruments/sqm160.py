"""An INFICON SQM-160 rate/thickness monitor on a pseudo-terminal, watching a deposition on the bench's clock.

Clients reach it as a real serial port: pyserial ``serial.Serial(emulator.port)`` or PyVISA
``ASRL/dev/pts/N::INSTR`` (pyvisa-py). The wire contract (research/instruments.md §6.2, §6.3):

- A command is ``!`` + a length character (message length + 34) + the message + two CRC characters (CRC-14 of the
  length character and message, each 7-bit half + 34); two NULs instead of the CRC turn the check off. A ``!``
  anywhere starts a new packet. Every command gets one reply: ``!`` + length (status and message + 35) + a status
  character + the message + CRC. Nothing is sent unasked.
- Status ``A`` ok; ``C`` unknown command; ``D`` bad data (a sensor, film or value out of range, wrong field count);
  ``E`` wrong mode (changing the film while the shutter relay is open); ``F`` CRC mismatch (the SQC-310's
  character: the SQM-160 manual lists only A, C and D, so what a real SQM-160 sends then is unconfirmed).
- Commands: ``@`` firmware (``MON Ver 4.13``); ``J`` sensors installed; ``L{s}`` or ``L{s}?`` rate (Å/s, ``%5.2f``);
  ``N{s}`` thickness (kÅ, ``%6.3f``); ``P{s}`` frequency (Hz, ``%.3f``); ``R{s}`` crystal life (%, ``%.2f``);
  ``M``/``O`` the film's (sensor-averaged) rate and thickness; ``W`` ``00.00`` then rate, thickness, frequency of
  each sensor, spaces between; ``A{f}?`` / ``A{f} name density tooling Z final setpoint time mask`` film
  parameters (film 1-99); ``D{f}`` active film; ``U1``/``U0`` shutter relay open/closed; ``S`` zero thickness and
  rate; ``T`` zero timer; ``Y`` power-up flag (1 once, then 0); ``Z`` films back to defaults.
  ``A``, ``D`` and ``U`` follow labctl's reading of §6.3, which marks them unconfirmed.

Physics, all of it on the bench's :class:`~labctl.sim_instruments.clock.VirtualClock`:

- The source grows the film at the crystal at ``rate_A_s`` (Å/s of the active film), with a linear drift and an
  Ornstein-Uhlenbeck fluctuation drawn on a 1 s grid and interpolated linearly, so how much lands between two times
  does not depend on how the clock was stepped; only while the shutter is open. The substrate gets
  ``geometry_tooling_pct`` / 100 of what the crystal gets (what tooling calibration finds).
- The crystal's resonance follows the Z-match (Lu-Lewis) equation of the film growing on it: a thickness dT of
  the active film moves the frequency along that film's curve of thickness against frequency (what lies below is
  treated as the same material, the single-film approximation monitors make).
- The firmware turns frequency into thickness with the same equation for the active film's density and Z-ratio,
  times tooling / 100, since the last zero, so a monitor programmed with the film's true constants shows the film
  grown (plus noise); the rate is that thickness's change over the last ``RATE_WINDOW_S``; crystal life =
  100 (f − f_min)/(f_q − f_min). Readings carry frequency noise.
- The shutter relay closes by itself when the film's final thickness is reached (a clock event, so a stepped clock
  stops there). The crystal fails at ``fail_at_s``, or when its life runs out: it stops oscillating, frequency, rate
  and life read 0 and the thickness stays where it was.
- Only sensor 1 holds a crystal; the other sensors read as empty (0 Hz).

One module per concern: the source and the crystal (sqm160_crystal.py), the firmware's film records, data checks and
display formats (sqm160_firmware.py), the pseudo-terminal and packet framing (sqm160_pty.py); this module is the
instrument's state on the clock and its command table.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from labctl.sim_instruments.clock import VirtualClock
from labctl.sim_instruments.sqm160_crystal import (
    F_DEAD_HZ,
    F_NEW_HZ,
    GRID_S,
    HORIZON_S,
    MonitorSetup,
    Source,
    zmatch_frequency_Hz,
    zmatch_thickness_A,
)
from labctl.sim_instruments.sqm160_firmware import (
    FILMS,
    FIRMWARE,
    DataError,
    Film,
    ModeError,
    display_text,
    integer_in,
    parse_film,
)
from labctl.sim_instruments.sqm160_pty import PtyPort

__all__ = ["MonitorSetup", "SQM160Emulator"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FREQUENCY_NOISE_HZ = 0.03  # sim value, of the order of a monitor's frequency resolution at 6 MHz
RATE_WINDOW_S = 1.0  # sim value: a 0.25 s time base averaged over 4 readings
GATE_S = 0.25  # shortest span a rate is computed over

DEFAULT_SETUP = MonitorSetup()

Handler = Callable[[str], str]


@dataclass
class _State:
    films: dict[int, Film] = field(default_factory=dict)
    active: int = 1
    relay_open: bool = False
    hand_open: bool = False
    frequency_Hz: float = F_NEW_HZ
    zero_frequency_Hz: float = F_NEW_HZ
    zero_time_s: float = 0.0
    timer_zero_s: float = 0.0
    failed_thickness_kA: float | None = None  # set when the crystal has failed
    power_up: bool = True
    substrate_A: float = 0.0


class SQM160Emulator:
    """An SQM-160 on a new pseudo-terminal (:attr:`port`), living on ``clock``. Close it when done."""

    def __init__(self, clock: VirtualClock, setup: MonitorSetup = DEFAULT_SETUP) -> None:
        self.clock, self.setup = clock, setup
        self.source = Source(setup)
        self._noise = np.random.default_rng(setup.seed + 1)
        f_Hz = F_DEAD_HZ + setup.crystal_life_pct / 100 * (F_NEW_HZ - F_DEAD_HZ)
        self.state = _State(frequency_Hz=f_Hz, zero_frequency_Hz=f_Hz)
        self._history: deque[tuple[float, float]] = deque([(clock.now, f_Hz)])  # (bench time, frequency)
        self._t = clock.now
        self._next: tuple[float, str] | None = None  # (bench time, what) of the next foreseeable event
        self._foreseen_at: float | None = None
        self._port = PtyPort(self._answer)
        self.port = self._port.port
        self._changed()

    # --- what a test or the operator does to the hardware ---

    def operate_shutter(self, open_: bool) -> None:
        """The operator's hand on the shutter (what counts on a bench whose relay is not wired)."""
        with self.clock.lock:
            self._integrate(self.clock.now)
            self.state.hand_open = open_
            self._changed()

    @property
    def shutter_open(self) -> bool:
        """Whether the source shutter is open now."""
        return self.state.relay_open if self.setup.shutter_wired else self.state.hand_open

    @property
    def substrate_thickness_nm(self) -> float:
        """What a cross-section of the substrate (FIB-SEM) would measure, all layers together."""
        return self.state.substrate_A / 10.0

    @property
    def crystal_failed(self) -> bool:
        return self.state.failed_thickness_kA is not None

    def close(self) -> None:
        self.clock.unregister(self)
        self._port.close()

    def __enter__(self) -> SQM160Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- clock participant ---

    def max_step(self) -> float:
        event = self._next_event()
        return math.inf if event is None else max(event[0] - self.clock.now, 0.0)

    def advance(self, dt: float) -> bool:
        t_end = self.clock.now
        event = self._next_event()
        hit = event is not None and event[0] <= t_end + 1e-9
        self._integrate(event[0] if hit else t_end)
        if hit:
            self._fire(event[1])
        self._t = t_end
        return hit

    def _depositing(self) -> bool:
        return self.shutter_open and not self.crystal_failed

    def _integrate(self, t1: float) -> None:
        if self._depositing() and t1 > self._t:
            grown_A = self.source.deposited_A(self._t, t1)
            film = self._film
            thickness_A = zmatch_thickness_A(self.state.frequency_Hz, film.density_g_cm3, film.z_ratio) + grown_A
            self.state.frequency_Hz = zmatch_frequency_Hz(thickness_A, film.density_g_cm3, film.z_ratio)
            self.state.substrate_A += grown_A * self.setup.geometry_tooling_pct / 100
        self._t = t1
        self._history.append((t1, self.state.frequency_Hz))
        while len(self._history) > 2 and self._history[1][0] < t1 - RATE_WINDOW_S - GRID_S:
            self._history.popleft()

    def _next_event(self) -> tuple[float, str] | None:
        stale = self._foreseen_at is not None and self._t - self._foreseen_at > HORIZON_S / 2
        if (self._next is None or stale) and not self.crystal_failed:
            self._next, self._foreseen_at = self._foresee(), self._t
        return self._next

    def _foresee(self) -> tuple[float, str] | None:
        events = [] if self.setup.fail_at_s is None else [(max(self.setup.fail_at_s, self._t), "fail")]
        if self._depositing():
            film = self._film
            dead_A = zmatch_thickness_A(F_DEAD_HZ, film.density_g_cm3, film.z_ratio)
            events.append((self._time_to_grow(dead_A - self._grown_A(self.state.frequency_Hz)), "fail"))
            if self.state.relay_open and self.setup.shutter_wired and film.final_kA > 0:
                shown_A = self._display_A(self.state.frequency_Hz)
                need_A = (film.final_kA * 1000 - shown_A) * 100 / film.tooling_pct
                events.append((self._time_to_grow(need_A), "final"))
        return min(events, default=None)

    def _time_to_grow(self, need_A: float) -> float:
        return self._t if need_A <= 0 else self.source.time_to_deposit(self._t, need_A)

    def _fire(self, what: str) -> None:
        if what == "final":
            self.state.relay_open = False
            log.info("SQM-160 emulator: final thickness reached at t = %.3f s, shutter closed", self._t)
        else:
            self.state.failed_thickness_kA = self._thickness_kA(noisy=False)
            log.info("SQM-160 emulator: crystal failed at t = %.3f s", self._t)
        self._changed()

    def _changed(self) -> None:
        """Shutter, film or zero changed (commands come between clock steps, so the crystal is integrated up to
        now): foresee the next event again from the present."""
        self._integrate(self.clock.now)
        self._next = self._foreseen_at = None
        # Only a growing film or a crystal due to fail needs the clock's substeps; an idle monitor catches up
        # when it is read, so it costs a cycler test nothing.
        if self._depositing() or (self.setup.fail_at_s is not None and not self.crystal_failed):
            self.clock.register(self)
        else:
            self.clock.unregister(self)

    # --- readings ---

    @property
    def _film(self) -> Film:
        return self.state.films.setdefault(self.state.active, Film(name=f"FILM{self.state.active}"))

    def _measured_f(self, f_Hz: float, noisy: bool) -> float:
        return f_Hz + (self._noise.normal(0.0, FREQUENCY_NOISE_HZ) if noisy else 0.0)

    def _grown_A(self, f_Hz: float) -> float:
        """Thickness of the active film on a crystal at ``f_Hz`` (Z-match, whole load)."""
        return zmatch_thickness_A(f_Hz, self._film.density_g_cm3, self._film.z_ratio)

    def _display_A(self, f_Hz: float) -> float:
        """What the monitor shows at ``f_Hz``: thickness since the zero, times tooling."""
        return (self._grown_A(f_Hz) - self._grown_A(self.state.zero_frequency_Hz)) * self._film.tooling_pct / 100

    def _thickness_kA(self, noisy: bool = True) -> float:
        if self.crystal_failed:
            return self.state.failed_thickness_kA or 0.0
        return self._display_A(self._measured_f(self.state.frequency_Hz, noisy)) / 1000

    def _rate_A_s(self) -> float:
        if self.crystal_failed:
            return 0.0
        start = max(self._t - RATE_WINDOW_S, self.state.zero_time_s)
        if self._t - start < GATE_S:
            return 0.0
        then = self._display_A(self._measured_f(self._frequency_at(start), True))
        now = self._display_A(self._measured_f(self.state.frequency_Hz, True))
        return (now - then) / (self._t - start)

    def _frequency_at(self, t: float) -> float:
        times = [h[0] for h in self._history]
        k = bisect.bisect_right(times, t)
        if k == 0:
            return self._history[0][1]
        if k == len(times):
            return self._history[-1][1]
        (t0, m0), (t1, m1) = self._history[k - 1], self._history[k]
        return m0 if t1 <= t0 else m0 + (m1 - m0) * (t - t0) / (t1 - t0)

    def _frequency(self) -> float:
        return 0.0 if self.crystal_failed else self._measured_f(self.state.frequency_Hz, True)

    def _life_pct(self) -> float:
        if self.crystal_failed:
            return 0.0
        life = 100 * (self.state.frequency_Hz - F_DEAD_HZ) / (F_NEW_HZ - F_DEAD_HZ)
        return min(max(life, 0.0), 100.0)

    # --- commands ---

    def reply(self, message: str) -> str:
        """Status character and message answering one command (the clock's lock held)."""
        try:
            return "A" + self._execute(message)
        except DataError as e:
            log.warning("SQM-160 emulator: %r: %s (status D)", message, e)
            return "D"
        except ModeError as e:
            log.warning("SQM-160 emulator: %r: %s (status E)", message, e)
            return "E"
        except KeyError:
            log.warning("SQM-160 emulator: unknown command %r (status C)", message)
            return "C"

    def _execute(self, message: str) -> str:
        if not message:
            raise KeyError(message)
        letter, args = message[0], message[1:]
        handlers = {
            "@": self._version,
            "J": self._channels,
            "A": self._film_command,
            "D": self._active_film,
            "L": self._sensor(lambda: display_text(self._rate_A_s(), 5, 2), " 0.00", query_mark=True),
            "N": self._sensor(lambda: display_text(self._thickness_kA(), 6, 3), " 0.000"),
            "P": self._sensor(lambda: display_text(self._frequency(), 0, 3), "0.000"),
            "R": self._sensor(lambda: display_text(self._life_pct(), 0, 2), "0.00"),
            "M": self._no_args(lambda: display_text(self._rate_A_s(), 5, 2)),
            "O": self._no_args(lambda: display_text(self._thickness_kA(), 6, 3)),
            "W": self._no_args(self._all_values),
            "S": self._no_args(self._zero),
            "T": self._no_args(self._zero_timer),
            "U": self._shutter,
            "Y": self._no_args(self._power_up),
            "Z": self._no_args(self._defaults),
        }
        return handlers[letter](args)

    def _version(self, args: str) -> str:
        return self._no_args(lambda: FIRMWARE)(args)

    def _channels(self, args: str) -> str:
        return self._no_args(lambda: str(self.setup.sensors))(args)

    def _no_args(self, action: Callable[[], str | None]) -> Handler:
        def handler(args: str) -> str:
            if args:
                raise DataError(f"takes no data, got {args!r}")
            return action() or ""

        return handler

    def _sensor(self, reading: Callable[[], str], empty: str, query_mark: bool = False) -> Handler:
        def handler(args: str) -> str:
            number = args[:-1] if query_mark and args.endswith("?") else args
            sensor = integer_in(number, range(1, self.setup.sensors + 1), "sensor")
            return reading() if sensor == 1 else empty  # only sensor 1 holds a crystal

        return handler

    def _all_values(self) -> str:
        values = [display_text(self._rate_A_s(), 0, 2), display_text(self._thickness_kA(), 0, 3),
                  display_text(self._frequency(), 0, 3)]
        empty = ["0.00", "0.000", "0.000"]
        return " ".join(["00.00", *values, *empty * (self.setup.sensors - 1)])

    def _film_command(self, args: str) -> str:
        number_text, _, rest = args.partition(" ")
        if number_text.endswith("?") and not rest:
            number = integer_in(number_text[:-1], FILMS, "film")
            return self.state.films.get(number, Film(f"FILM{number}")).fields()
        number = integer_in(number_text, FILMS, "film")
        if number == self.state.active and self.state.relay_open:
            raise ModeError("the active film cannot change while the shutter is open")
        self.state.films[number] = parse_film(rest)
        self._changed()
        return ""

    def _active_film(self, args: str) -> str:
        number = integer_in(args, FILMS, "film")
        if self.state.relay_open:
            raise ModeError("the active film cannot change while the shutter is open")
        self.state.active = number
        self._changed()
        return ""

    def _shutter(self, args: str) -> str:
        if args not in ("0", "1"):
            raise DataError(f"the shutter is U1 (open) or U0 (closed), not U{args}")
        self._integrate(self.clock.now)
        self.state.relay_open = args == "1"
        self._changed()
        return ""

    def _zero(self) -> None:
        self._integrate(self.clock.now)
        self.state.zero_frequency_Hz = self.state.frequency_Hz
        self.state.zero_time_s = self._t
        if self.crystal_failed:
            self.state.failed_thickness_kA = 0.0
        self._next = self._foreseen_at = None

    def _zero_timer(self) -> None:
        self.state.timer_zero_s = self.clock.now

    def _power_up(self) -> str:
        flag, self.state.power_up = self.state.power_up, False
        return "1" if flag else "0"

    def _defaults(self) -> None:
        if self.state.relay_open:
            raise ModeError("films cannot be reset while the shutter is open")
        self.state.films.clear()
        self.state.active = 1
        self._changed()

    def _answer(self, message: str, crc_ok: bool) -> str:
        """What the port sends back for one packet (a transport thread calls it)."""
        with self.clock.lock:
            self._integrate(self.clock.now)  # an idle monitor is off the clock: catch up first
            return self.reply(message) if crc_ok else "F"
