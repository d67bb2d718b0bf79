"""The virtual time of a simulated bench, and the control channel that moves it.

Every emulator on a bench shares one :class:`VirtualClock`. Emulators never move time through their
instrument protocol: a program steps the clock through :class:`ClockServer` (JSON lines over TCP on
127.0.0.1), so hours of test time pass in milliseconds and a run is deterministic. A bench nobody steps runs
free at wall time times a speed factor, for programs that do not know about the clock.

Control channel, one JSON object per line, each answered by one line::

    {"op": "now"}                 -> {"ok": true, "t": 12.5}
    {"op": "advance", "dt": 10}   -> {"ok": true, "t": 20.0, "event": false}
    anything malformed            -> {"ok": false, "error": "..."}

``advance`` takes an optional ``"stop_on_event"`` (default true): stop at the first instrument event.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from labctl.sim_instruments.tcp import TcpServer

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MIN_SUBSTEP_S = 1e-9  # progress guarantee when a participant's next event is (numerically) now
MAX_LINE_BYTES = 65536


class Participant(Protocol):
    """Something whose state evolves with bench time, e.g. a running cycler channel.

    During ``advance`` the clock's ``now`` is already the end of the substep being integrated.
    """

    def max_step(self) -> float:
        """Seconds until the next event this participant can foresee (a time or capacity limit), or inf."""
        ...

    def advance(self, dt: float) -> bool:
        """Integrate ``dt`` seconds; True if an event (such as a step transition) happened."""
        ...


class VirtualClock:
    """Virtual bench time in seconds, moved in substeps of at most ``max_substep_s``.

    ``lock`` guards the time and every participant's state: emulators hold it while they read or change a
    channel, and the clock holds it while it integrates, so a reading is never taken halfway through a step.
    """

    def __init__(self, max_substep_s: float = 1.0) -> None:
        if not (math.isfinite(max_substep_s) and max_substep_s > 0):
            raise ValueError(f"max_substep_s must be a finite number of seconds > 0, not {max_substep_s!r}")
        self.max_substep_s = max_substep_s
        self.lock = threading.RLock()
        self._t = 0.0
        self._participants: tuple[Participant, ...] = ()
        self._steppers = 0  # control clients that have stepped the clock and are still connected
        self._wall_ref = time.monotonic()
        self._free_thread: threading.Thread | None = None
        self._stop_free = threading.Event()

    @property
    def now(self) -> float:
        """Virtual time in seconds since the clock was made."""
        return self._t

    @property
    def stepped(self) -> bool:
        """True while a control client steps the clock (free running is paused)."""
        return self._steppers > 0

    @property
    def participants(self) -> tuple[Participant, ...]:
        """The emulators the clock integrates now (those running)."""
        return self._participants

    def register(self, participant: Participant) -> None:
        with self.lock:
            if participant not in self._participants:
                self._participants += (participant,)

    def unregister(self, participant: Participant) -> None:
        with self.lock:
            self._participants = tuple(p for p in self._participants if p is not participant)

    def advance(self, dt: float, stop_on_event: bool = True) -> tuple[float, bool]:
        """Move time forward by up to ``dt`` seconds; return (time now, whether an event happened).

        Each participant's foreseeable events (``max_step``) bound the substeps, so time and capacity limits
        are met exactly. With ``stop_on_event`` the clock stops right after the substep in which an event
        happened, so whoever polls next sees it as a fast poll on hardware would.
        """
        if not (math.isfinite(dt) and dt >= 0):
            raise ValueError(f"dt must be a finite number of seconds >= 0, not {dt!r}")
        with self.lock:
            return self._advance(dt, stop_on_event)

    def _advance(self, dt: float, stop_on_event: bool) -> tuple[float, bool]:
        max_substep = self.max_substep_s
        t0, elapsed, event = self._t, 0.0, False
        while elapsed < dt:
            participants = self._participants  # a participant may leave during a substep
            remaining = dt - elapsed
            step = remaining if remaining < max_substep or not participants else max_substep
            for p in participants:
                limit = p.max_step()
                if limit < step:
                    step = limit
            if self._participants is not participants:
                continue  # one joined or left meanwhile (an analyzer took in SI): bound the step with them, at now
            if step < MIN_SUBSTEP_S:
                step = MIN_SUBSTEP_S
            last = step >= remaining - MIN_SUBSTEP_S
            if last:
                step = remaining
            elapsed = dt if last else elapsed + step
            self._t = t0 + elapsed  # participants integrate up to now
            hit = False
            for p in participants:
                if p.advance(step):
                    hit = True
            if hit:
                event = True
                if stop_on_event:
                    break
        return self._t, event

    # --- stepped and free-running modes ---

    def hold(self) -> None:
        """A control client takes over: time moves only when it advances the clock."""
        with self.lock:
            self._steppers += 1

    def release(self) -> None:
        """A control client is gone; when none is left, free running resumes from the present time."""
        with self.lock:
            self._steppers = max(0, self._steppers - 1)
            self._wall_ref = time.monotonic()

    def run_free(self, speed: float = 1.0, tick_s: float = 0.05) -> None:
        """Advance in a background thread at wall time x ``speed`` while no control client steps the clock."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a finite factor > 0, not {speed!r}")
        if self._free_thread is not None:
            raise RuntimeError("the clock already runs free; call stop() first")
        self._stop_free.clear()
        self._wall_ref = time.monotonic()
        self._free_thread = threading.Thread(target=self._free_loop, args=(speed, tick_s), name="clock-free", daemon=True)
        self._free_thread.start()

    def stop(self) -> None:
        """Stop free running (if it was started); the time stays where it is."""
        thread, self._free_thread = self._free_thread, None
        if thread is not None:
            self._stop_free.set()
            thread.join(timeout=5)

    def _free_loop(self, speed: float, tick_s: float) -> None:
        while not self._stop_free.wait(tick_s):
            with self.lock:
                wall = time.monotonic()
                dt, self._wall_ref = (wall - self._wall_ref) * speed, wall
                if self._steppers == 0 and dt > 0:
                    try:
                        self._advance(dt, stop_on_event=False)
                    except Exception:
                        log.exception("free-running clock stopped: a participant failed at t = %.3f s", self._t)
                        return


class ClockServer(TcpServer):
    """The control channel of a :class:`VirtualClock`: JSON lines on 127.0.0.1 (``port`` 0 picks a free port).

    A client that advances the clock holds it in stepped mode until it disconnects.
    """

    def __init__(self, clock: VirtualClock, port: int = 0) -> None:
        self.clock = clock
        super().__init__(port, name="clock")
        _SERVED_HERE[self.address] = clock

    def close(self) -> None:
        _SERVED_HERE.pop(self.address, None)  # first: an in-process client falls back to the (closed) socket
        super().close()

    def handle(self, conn: socket.socket) -> None:
        session = _Session()
        try:
            with conn.makefile("rb") as rfile:
                while line := rfile.readline(MAX_LINE_BYTES + 1):
                    if len(line) > MAX_LINE_BYTES:
                        conn.sendall(_encode(_error(f"request longer than {MAX_LINE_BYTES} bytes; closing")))
                        return
                    conn.sendall(_encode(self._reply(line, session)))
        finally:
            if session.stepping:
                self.clock.release()

    def _reply(self, line: bytes, session: _Session) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return _error(f"not JSON ({e}); send one object per line, like {{\"op\": \"now\"}}")
        if not isinstance(request, dict):
            return _error('a request is a JSON object, like {"op": "now"}')
        op = request.get("op")
        if op == "now":
            return {"ok": True, "t": self.clock.now}
        if op != "advance":
            return _error(f"unknown op {op!r}; ops are \"now\" and \"advance\"")
        if "dt" not in request:
            return _error('advance needs "dt", the seconds to advance (a number >= 0)')
        dt = request["dt"]
        if isinstance(dt, bool) or not isinstance(dt, int | float):
            return _error(f"advance needs \"dt\": seconds as a number >= 0, got {dt!r}")
        try:
            seconds = float(dt)
        except OverflowError:  # a JSON integer beyond any float
            seconds = math.inf
        if not math.isfinite(seconds) or seconds < 0:
            return _error(f"advance \"dt\" must be finite and >= 0, got {dt!r}")
        stop_on_event = request.get("stop_on_event", True)
        if not isinstance(stop_on_event, bool):
            return _error(f"advance \"stop_on_event\" must be true or false, got {stop_on_event!r}")
        if not session.stepping:
            self.clock.hold()
            session.stepping = True
        try:
            t, event = self.clock.advance(seconds, stop_on_event)
        except Exception as e:
            log.exception("advancing the clock by %g s failed", seconds)
            return _error(f"advance failed inside the simulation: {e}")
        return {"ok": True, "t": t, "event": event}


def served_here(host: str, port: int) -> VirtualClock | None:
    """The clock whose control channel this process serves at ``host``:``port`` (None if another process
    serves it, or it closed). A client in the same process (``labctl run --bench sim``) advances it by a call
    instead of a socket round trip per wait, which costs two thread switches under one GIL; it still holds the
    clock through its connection, so closing that connection lets the clock run free as before."""
    return _SERVED_HERE.get((host, port))


_SERVED_HERE: dict[tuple[str, int], VirtualClock] = {}  # open control channels of this process, by address


@dataclass
class _Session:
    stepping: bool = False  # this client has advanced the clock, so it holds it in stepped mode


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def _encode(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply).encode() + b"\n"
