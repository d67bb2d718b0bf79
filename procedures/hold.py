"""Potentiostatic hold: a constant voltage for a set time, with the current read out at chosen times.

Wang et al. (Adv. Mater. 2024; PROTOCOLS.md §2d) hold collector|SE|collector cells (Cu, W-Cu, Mg-Cu, Mg/W-Cu
against Li6PS5Cl, no lithium) at ``voltage`` = 4.2 V for ``duration`` = 100 h and report the anodic (corrosion)
current at ``readout_times`` = 10, 50 and 90 h: 39/35/16 µA for Cu, 1-4 µA for the coated collectors.

The channel clamps |I| at ``current_limit`` (the first seconds of a hold charge the interfaces). The current at a
readout time is interpolated linearly between the two samples around it. At the end, on a stop or a fault, the
channel rests at zero current.
"""

from __future__ import annotations

from pymeasure.experiment import FloatParameter, Parameter

from labctl.procedures.base import ParameterError
from labctl.procedures.cycling import CyclingProcedure
from labctl.procedures.fullcell import parse_numbers
from labctl.roles import CyclerReading
from labctl.units import SECONDS_PER_HOUR


class HoldProcedure(CyclingProcedure):
    """Hold a voltage; report the current at chosen times."""

    NAME = "hold"
    ROLES = ("cycler",)
    SIM_CELL = "Cu|Cu"

    voltage = FloatParameter("Hold voltage", units="V", minimum=-5, maximum=5, default=4.2)
    duration = FloatParameter("Duration", units="h", minimum=0.001, maximum=10000, default=100.0)
    readout_times = Parameter("Readout times", default="10,50,90", description="h after the start, comma-separated")
    current_limit = FloatParameter("Current limit", units="mA", minimum=0.001, maximum=10000, default=1.0,
                                   description="|I| clamp of the channel during the hold")
    sample_interval = FloatParameter("Sample interval", units="s", minimum=0.1, maximum=3600, default=60.0,
                                     description="Time between stored samples after the first 16 s")

    def check(self) -> None:
        late = [t for t in self.readout_h() if t > self.duration]
        if late:
            raise ParameterError(f"readout_times: {late[0]:g} h is after the end of the hold ({self.duration:g} h); "
                                 "lengthen duration or drop that time")

    def readout_h(self) -> list[float]:
        """The readout times, h after the start."""
        return parse_numbers("readout_times", self.readout_times, type(self).duration.maximum)

    def estimated_duration_s(self) -> float:
        return self.duration * SECONDS_PER_HOUR

    def startup(self) -> None:
        self.begin_cycling()
        self._pending = sorted(t * SECONDS_PER_HOUR for t in self.readout_h())
        self._readouts: list[dict] = []
        self._first: CyclerReading | None = None
        self._last: CyclerReading | None = None
        self.emit("event", {"kind": "test_started", "voltage_V": self.voltage, "duration_h": self.duration})

    def execute(self) -> None:
        self.run_segment(lambda: self.cycler.apply_voltage(
            self.voltage, max_current_A=self.current_limit / 1000, until_time_s=self.duration * SECONDS_PER_HOUR),
            cycle=1, density_mA_cm2=0.0, label=f"hold at {self.voltage:g} V")  # fmt: skip
        self.cycler.rest()
        self.emit("result", self.result())

    def observe(self, reading: CyclerReading, cycle: int, step: int) -> bool:
        previous, self._last = self._last, reading
        self._first = self._first or reading
        while previous and self._pending and previous.test_time_s <= self._pending[0] <= reading.test_time_s:
            t = self._pending.pop(0)
            span = reading.test_time_s - previous.test_time_s
            w = (t - previous.test_time_s) / span if span else 1.0
            current = previous.current_A + w * (reading.current_A - previous.current_A)
            self._readouts.append({"time_h": t / SECONDS_PER_HOUR, "current_uA": current * 1e6,
                                   "current_density_uA_cm2": current * 1e6 / self.area_cm2})
            self.emit("event", {"kind": "readout", **self._readouts[-1]})
        return False

    def result(self) -> dict:
        result = {"voltage_V": self.voltage, "readouts": self._readouts,
                  "initial_current_uA": self._first.current_A * 1e6 if self._first else None,
                  "final_current_uA": self._last.current_A * 1e6 if self._last else None,
                  "held_h": self._last.test_time_s / SECONDS_PER_HOUR if self._last else 0.0}
        result["headline"] = hold_headline(result)
        result["brief"] = f"{self.voltage:g} V hold, {result['held_h']:.3g} h"
        return result


def hold_headline(r: dict) -> str:
    if not r["readouts"]:
        return f"Held {r['voltage_V']:g} V for {r['held_h']:.3g} h; no readout time reached"
    times = "/".join(f"{x['time_h']:g}" for x in r["readouts"])
    currents = "/".join(f"{x['current_uA']:.3g}" for x in r["readouts"])
    return f"Current at {times} h of the {r['voltage_V']:g} V hold: {currents} µA"
