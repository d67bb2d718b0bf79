"""What procedures that drive a cycler channel share: starting the test, recording readings, a safe end."""

from __future__ import annotations

import time
from collections.abc import Callable

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
from labctl.roles import CyclerReading
from labctl.units import percent_done

BDF_COLUMNS = [TIME, VOLTAGE, CURRENT, UNIX_TIME, CYCLE, STEP, CHARGE_CAPACITY, DISCHARGE_CAPACITY]
UNSAFE_STATUSES = {"Unsafe", "Error", "DAQ Memory Unsafe"}
# The first samples of a segment come at 1, 2, 4, 8 and 16 s, then every sample interval: a nucleation dip
# (≈0.01 mAh/cm², tens of seconds at 1 mA/cm²) and the ohmic step are caught without sampling a week-long test
# every second.
FIRST_WAITS_S = (1.0, 1.0, 2.0, 4.0, 8.0)


class InstrumentFault(RuntimeError):
    """The instrument reported a state in which the test cannot go on."""


class CyclingProcedure(LabProcedure):
    """A procedure on the cycler role. ``shutdown`` always leaves the channel at rest, then idle."""

    DATA_COLUMNS = BDF_COLUMNS
    FIRST_WAITS_S: tuple[float, ...] = FIRST_WAITS_S

    def begin_cycling(self) -> None:
        self.cycler = self.bench.cycler
        self.clock = self.bench.clock
        self.cycler.begin(f"labctl {self.NAME} {self.cell_id}")
        self._start_unix = time.time()  # test time 0; Unix Time / s = this + test time
        self._total_s = self.estimated_duration_s()

    def shutdown(self) -> None:
        if getattr(self, "cycler", None) is not None:
            try:
                self.cycler.rest()
            finally:
                self.cycler.end()

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
        self.emit("event", {"kind": "segment_started", "step": self.step_count, "cycle": cycle, "label": label,
                            "current_density_mA_cm2": density_mA_cm2})
        waits = iter(self.FIRST_WAITS_S)
        reading = self.cycler.read()
        while not self.should_stop():
            self.clock.wait(min(next(waits, interval_s), interval_s))
            reading = self.cycler.read()
            self.record(reading, cycle=cycle, step=self.step_count, density_mA_cm2=density_mA_cm2)
            if self.observe(reading, cycle, self.step_count):
                break
            if not reading.segment_active:
                self.emit("event", {"kind": "segment_ended", "step": self.step_count, "label": label,
                                    "reason": reading.end_reason, "test_time_s": reading.test_time_s})
                break
        return reading

    def observe(self, reading: CyclerReading, cycle: int, step: int) -> bool:
        """Look at one stored reading; True ends the test (e.g. a detected short). Default: nothing to see."""
        return False
