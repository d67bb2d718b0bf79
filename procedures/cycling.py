"""What procedures that drive a cycler channel share: starting the test, recording readings, a safe end."""

from __future__ import annotations

import time

from labctl.procedures.base import LabProcedure
from labctl.roles import CyclerReading

BDF_COLUMNS = [
    "Test Time / s", "Voltage / V", "Current / A", "Unix Time / s", "Cycle Count / 1", "Step Count / 1",
    "Charging Capacity / Ah", "Discharging Capacity / Ah",
]  # fmt: skip
UNSAFE_STATUSES = {"Unsafe", "Error", "DAQ Memory Unsafe"}


class InstrumentFault(RuntimeError):
    """The instrument reported a state in which the test cannot go on."""


class CyclingProcedure(LabProcedure):
    """A procedure on the cycler role. ``shutdown`` always leaves the channel at rest, then idle."""

    DATA_COLUMNS = BDF_COLUMNS

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
            "Test Time / s": r.test_time_s, "Voltage / V": r.voltage_V, "Current / A": r.current_A,
            "Unix Time / s": self._start_unix + r.test_time_s, "Cycle Count / 1": cycle, "Step Count / 1": step,
            "Charging Capacity / Ah": r.charge_capacity_Ah, "Discharging Capacity / Ah": r.discharge_capacity_Ah,
        })  # fmt: skip
        self.emit("status", {"test_time_s": r.test_time_s, "voltage_V": r.voltage_V, "current_A": r.current_A,
                             "density_mA_cm2": density_mA_cm2, "cycle": cycle})
        self.emit("progress", min(100.0, 100.0 * r.test_time_s / self._total_s))
