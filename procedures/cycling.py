"""What procedures that drive a cycler channel share: starting the test, recording readings, a safe end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labctl.bdf_columns import (
    CHARGE_CAPACITY,
    CURRENT,
    CYCLE,
    DISCHARGE_CAPACITY,
    STEP,
    TIME,
    UNIX_TIME,
    VOLTAGE,
)
from labctl.procedures.base import LabProcedure
from labctl.roles import CyclerReading, ResumeRefused
from labctl.units import percent_done

BDF_COLUMNS = [TIME, VOLTAGE, CURRENT, UNIX_TIME, CYCLE, STEP, CHARGE_CAPACITY, DISCHARGE_CAPACITY]
UNSAFE_STATUSES = {"Unsafe", "Error", "DAQ Memory Unsafe"}
# The first samples of a segment come at 1, 2, 4, 8 and 16 s, then every sample interval: a nucleation dip
# (≈0.01 mAh/cm², tens of seconds at 1 mA/cm²) and the ohmic step are caught without sampling a week-long test
# every second.
FIRST_WAITS_S = (1.0, 1.0, 2.0, 4.0, 8.0)
# In a running constant-current segment the cycler regulates |I| to its set-point (Arbin: within 0.1 % of full
# scale), whatever the cell does, a short included; a reading farther off than this fraction of the set-point is
# the instrument or the wire, not the cell.
CURRENT_TOLERANCE = 0.2
CONSTANT_CURRENT_STATUSES = {"Charge", "Discharge"}  # the cycler's words while it passes a set current
TEST_NAME_CHARS = 72  # an Arbin test name (CTI START) holds at most this many UTF-16 units
READ_ATTEMPTS = 2  # reads of an implausible reading before the run ends as an instrument fault


class InstrumentFault(RuntimeError):
    """The instrument reported a state in which the test cannot go on, or readings it cannot have measured."""


@dataclass(frozen=True)
class Interrupted:
    """Where a run stopped, from its stored data and events: the segment that was running and the last reading."""

    step: int  # Step Count of the segment that was running
    cycle: int
    label: str
    started_s: float  # test time at which it was commanded, s
    last_s: float  # test time of the last stored reading, s
    last_written: float  # wall time (Unix) of the last write to the run's files
    start_unix: float  # Unix time of test time 0

    @classmethod
    def of(cls, rows: pd.DataFrame | None, events: list[dict[str, Any]], last_written: float) -> Interrupted:
        started = [e for e in events if e.get("kind") == "segment_started"]
        if not started or "test_time_s" not in started[-1]:
            raise ResumeRefused("no segment of it was recorded with its start time, so it cannot be resumed")
        last = started[-1]
        last_s, start_unix = last["test_time_s"], last["wall_time"] - last["test_time_s"]
        if rows is not None and len(rows):
            row = rows.iloc[-1]
            last_s, start_unix = float(row[TIME]), float(row[UNIX_TIME]) - float(row[TIME])
        return cls(last["step"], last["cycle"], last["label"], last["test_time_s"], last_s, last_written, start_unix)


class CyclingProcedure(LabProcedure):
    """A procedure on the cycler role. ``shutdown`` always leaves the channel at rest, then idle."""

    DATA_COLUMNS = BDF_COLUMNS
    FIRST_WAITS_S: tuple[float, ...] = FIRST_WAITS_S

    RESUMABLE = False  # whether a run stopped by a crash can go on where it stopped (``resume_from``)
    interrupted: Interrupted | None = None  # set by ``resume_from``: the segment a crash stopped
    _ran_s = 0.0  # how long the interrupted segment ran on the instrument, s

    def begin_cycling(self) -> None:
        self.cycler = self.bench.cycler
        self.clock = self.bench.clock
        self._total_s = self.estimated_duration_s()
        test_name = cycler_test_name(f"labctl {self.NAME} {self.cell_id}")
        if self.interrupted is None:
            self.cycler.begin(test_name)
            self._start_unix = time.time()  # test time 0; Unix Time / s = this + test time
            return
        point = self.interrupted
        now = self.cycler.resume(test_name, point.last_s)
        # a channel at rest entered it step_time_s ago: the segment ran until then (the cycler's limits or the
        # unwatched limit ended it, or a watchdog rested it)
        ended_s = now.test_time_s if now.status in CONSTANT_CURRENT_STATUSES else now.test_time_s - now.step_time_s
        self._ran_s = min(max(ended_s - point.started_s, 0.0), now.test_time_s - point.started_s)
        self._start_unix = point.start_unix
        self.emit("event", {"kind": "resumed", "step": point.step, "cycle": point.cycle, "label": point.label,
                            "segment_ran_s": self._ran_s, "test_time_s": now.test_time_s,
                            "gap_s": time.time() - point.last_written, "test_time_gap_s": now.test_time_s - point.last_s})

    def resume_from(self, rows: pd.DataFrame | None, events: list[dict[str, Any]], last_written: float) -> None:
        """Rebuild the state of a run a crash stopped from its stored ``rows`` and ``events`` (files last written at
        Unix time ``last_written``), so that ``startup`` takes its test over and ``execute`` goes on with the rest of
        its interrupted segment, then its plan. ResumeRefused if it cannot."""
        if not self.RESUMABLE:
            super().resume_from(rows, events, last_written)
        self.interrupted = Interrupted.of(rows, events, last_written)
        self.restore(rows, events)

    def restore(self, rows: pd.DataFrame | None, events: list[dict[str, Any]]) -> None:
        """A resumable procedure's own state from its stored rows and events (its analyzer's, its plan's)."""
        raise NotImplementedError

    def segments_done(self) -> int:
        """Segments a resumed run completed before its crash (0 for a new run); the next is the interrupted one."""
        return self.interrupted.step - 1 if self.interrupted else 0

    def remainder(self, until_time_s: float, until_charge_Ah: float | None,
                  current_A: float) -> tuple[float, float | None] | None:
        """The limits of the next constant-current segment: as planned, or for the segment a crash interrupted what
        is left of them (None if nothing is: it ended meanwhile), given that it ran ``_ran_s`` at ``current_A``."""
        point, self.interrupted = self.interrupted, None
        if point is None:
            return until_time_s, until_charge_Ah
        self.step_count = point.step - 1  # the rest of the segment keeps its Step Count
        time_left = until_time_s - self._ran_s
        charge_left = until_charge_Ah - abs(current_A) * self._ran_s / 3600 if until_charge_Ah else None
        if time_left < 1.0 or (charge_left is not None and charge_left <= until_charge_Ah * 1e-3):
            self.step_count += 1
            return None
        return time_left, charge_left

    def shutdown(self) -> None:
        if getattr(self, "cycler", None) is not None:
            try:
                self.cycler.rest()
            finally:
                self.cycler.end()

    def suspend(self) -> None:
        """Leave the channel at rest with its test kept, so ``labctl run --resume`` can go on in it (a resumable run
        told to terminate, e.g. by a shutdown); other runs end their test as ``shutdown`` does."""
        if not self.RESUMABLE or getattr(self, "cycler", None) is None:
            self.shutdown()
            return
        self.cycler.rest()

    def record(self, r: CyclerReading, *, cycle: int, step: int, density_mA_cm2: float) -> None:
        """Store one reading as a BDF row, then tell the displays; a fault state of the cycler ends the run."""
        if r.status in UNSAFE_STATUSES:
            raise InstrumentFault(f"cycler reports {r.status!r} at test time {r.test_time_s:.0f} s")
        self.emit("results", {
            TIME: r.test_time_s, VOLTAGE: r.voltage_V, CURRENT: r.current_A, UNIX_TIME: self._start_unix + r.test_time_s,
            CYCLE: cycle, STEP: step, CHARGE_CAPACITY: r.charge_capacity_Ah, DISCHARGE_CAPACITY: r.discharge_capacity_Ah,
        })  # fmt: skip
        self.emit("status", {"test_time_s": r.test_time_s, "voltage_V": r.voltage_V, "current_A": r.current_A,
                             "density_mA_cm2": density_mA_cm2, "cycle": cycle})
        self.emit("progress", percent_done(r.test_time_s, self._total_s))

    def run_segment(self, start: Callable[[], None], *, cycle: int, density_mA_cm2: float, label: str,
                    interval_s: float | None = None) -> CyclerReading:
        """Start a segment with ``start`` (an ``apply_current``/``apply_voltage`` call), then sample it every
        ``interval_s`` (default: the ``sample_interval`` parameter) until it ends, a stop is requested or ``observe``
        ends the test. ``Step Count`` goes up by one per segment."""
        interval_s = interval_s or self.sample_interval
        self.step_count = getattr(self, "step_count", 0) + 1
        start()
        reading = self.cycler.read()
        self.emit("event", {"kind": "segment_started", "step": self.step_count, "cycle": cycle, "label": label,
                            "current_density_mA_cm2": density_mA_cm2, "test_time_s": reading.test_time_s})
        waits = iter(self.FIRST_WAITS_S)
        set_current_A = density_mA_cm2 * self.area_cm2 / 1000  # 0 for a voltage hold: nothing to compare
        while not self.should_stop():
            self.clock.wait(min(next(waits, interval_s), interval_s))
            reading = self.read_plausible(set_current_A)
            self.record(reading, cycle=cycle, step=self.step_count, density_mA_cm2=density_mA_cm2)
            if self.observe(reading, cycle, self.step_count):
                break
            if not reading.segment_active:
                self.emit("event", {"kind": "segment_ended", "step": self.step_count, "label": label,
                                    "reason": reading.end_reason, "test_time_s": reading.test_time_s})
                break
        return reading

    def read_plausible(self, set_current_A: float) -> CyclerReading:
        """Read the channel, reading again when the current disagrees with the set-point ``set_current_A`` (A) of a
        running constant-current segment; raise InstrumentFault if it still does, so that a wrong reading is never
        analysed as the cell (a 100x current would look like a short)."""
        for _ in range(READ_ATTEMPTS):
            reading = self.cycler.read()
            problem = implausible_current(reading, set_current_A)
            if problem is None:
                return reading
            self.emit("event", {"kind": "implausible_reading", "message": problem, "test_time_s": reading.test_time_s})
        raise InstrumentFault(f"instrument fault, not the cell: {problem} in {READ_ATTEMPTS} reads; "
                              "check the cycler channel and its connection")

    def observe(self, reading: CyclerReading, cycle: int, step: int) -> bool:
        """Look at one stored reading; True ends the test (e.g. a detected short). Default: nothing to see."""
        return False


def cycler_test_name(name: str) -> str:
    """``name`` cut to the 72 characters (UTF-16 units) a cycler's test name holds; the whole cell id is in the run's
    metadata, and a resumed run cuts it the same way."""
    return name.encode("utf-16-le")[: 2 * TEST_NAME_CHARS].decode("utf-16-le", errors="ignore")


def implausible_current(r: CyclerReading, set_current_A: float) -> str | None:
    """Why reading ``r`` cannot be the current of a running constant-current segment set to ``set_current_A`` (A),
    or None if it can (or nothing was set: a voltage hold, a segment that ended)."""
    if not set_current_A or not r.segment_active or r.status not in CONSTANT_CURRENT_STATUSES:
        return None
    if abs(r.current_A - set_current_A) <= CURRENT_TOLERANCE * abs(set_current_A):
        return None
    return (f"current {r.current_A * 1000:.4g} mA read at test time {r.test_time_s:.0f} s in a constant-current "
            f"segment set to {set_current_A * 1000:.4g} mA")
