"""Impedance spectra at chosen cycles of a cycling test, on the bench's impedance role (Wang et al., Adv. Mater. 2024:
cycles 1-10, 15, 20, 25 and 30, then every 10, at 1 MHz - 1 Hz and 10 mV; Figs. S9-S10).

After the strip of a chosen cycle the channel rests and a spectrum is measured at the open-circuit voltage it reads
with the shared sweep (:meth:`SpectrumParameters.take_spectrum`: suspect points and a spectrum failing Lin-KK are
measured again; the bias is refused with an event outside the EIS voltage limits), stored in ``spectra.csv`` with
its cycle and step, and fitted. A sudden fall of the high-frequency intercept is the EIS sign of
a short (science.md §1.3 F: R_HF < 0.5 R_b): a spectrum whose R_HF is below ``R_HF_FALL`` × the first spectrum's
is a ``eis_short`` event and ends the test. When the voltage detector finds a short first, one more spectrum is
measured to confirm it the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pymeasure.experiment import BooleanParameter, FloatParameter, Parameter

from labctl.procedures.base import ParameterError
from labctl.procedures.eis import SpectrumParameters, open_circuit_voltage
from labctl.procedures.spectrum import Point
from labctl.units import SECONDS_PER_HOUR

WANG_EIS_CYCLES = "1-10,15,20,25,30,every 10"
R_HF_FALL = 0.5  # science.md §1.3 F: R_HF below half of R_b is a short
_ITEM = re.compile(r"^(?:(\d+)(?:-(\d+))?|every\s+(\d+))$")


@dataclass(frozen=True)
class CycleSchedule:
    """Cycles listed one by one, then (optionally) every ``every`` cycles after the last listed one."""

    listed: frozenset[int]
    every: int | None

    def includes(self, cycle: int) -> bool:
        if cycle in self.listed:
            return True
        last = max(self.listed, default=0)
        return self.every is not None and cycle > last and (cycle - last) % self.every == 0


def parse_cycles(text: str) -> CycleSchedule:
    """'1-10,15,20,25,30,every 10' → cycles 1 to 10, 15, 20, 25, 30, 40, 50 …; ValueError naming a bad item."""
    listed: set[int] = set()
    every = None
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = _ITEM.match(item)
        if match is None:
            raise ValueError(f"{item!r} is not a cycle, a range 'A-B' or 'every N'; write e.g. {WANG_EIS_CYCLES!r}")
        first, last, step = match.groups()
        if step is not None:
            every = int(step)
        else:
            listed.update(range(int(first), int(last or first) + 1))
    if 0 in listed or every == 0:
        raise ValueError("cycles count from 1 and 'every N' needs N ≥ 1")
    if not listed and every is None:
        raise ValueError(f"no cycle given; write e.g. {WANG_EIS_CYCLES!r}")
    return CycleSchedule(frozenset(listed), every)


class RolesWithEIS:
    """``ROLES`` of a procedure whose ``eis`` parameter adds the impedance role: the class names the roles it always
    needs (forms read that), an instance those its parameter values need (the runner and the queue read that)."""

    def __init__(self, *always: str) -> None:
        self.always = always

    def __get__(self, procedure: Any, owner: type) -> tuple[str, ...]:
        if procedure is None or procedure.eis is not True:
            return self.always
        return (*self.always, "impedance")


class _ImpedanceView:
    """The procedure as :class:`SpectrumParameters` sees it: its parameters, with the impedance role as ``analyzer``
    (the procedure's own ``analyzer`` is its CE analyzer)."""

    def __init__(self, procedure: Any, impedance: Any) -> None:
        self._procedure, self.analyzer = procedure, impedance

    def __getattr__(self, name: str) -> Any:
        return getattr(self._procedure, name)


class CycleEIS(SpectrumParameters):
    """Spectra after chosen cycles, mixed into a cycling procedure (which provides ``cycler``, ``clock``,
    ``step_count``, ``emit`` and ``should_stop``)."""

    eis = BooleanParameter("EIS at chosen cycles", default=False,
                           description="A spectrum at rest after each cycle in eis_cycles; needs an impedance role")
    eis_cycles = Parameter("EIS cycles", default=WANG_EIS_CYCLES,
                           description="Cycles, ranges A-B and 'every N' after the last (Wang et al.)")
    start_frequency = FloatParameter("Start frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=1e6)
    stop_frequency = FloatParameter("Stop frequency", units="Hz", minimum=1e-5, maximum=3.2e7, default=1.0)

    def check_eis(self) -> None:
        """Checked with ``eis`` off too: a setting given with a typo is refused now, not when EIS is turned on."""
        self.check_frequencies()
        self.check_voltage_limits()
        try:
            parse_cycles(self.eis_cycles)
        except ValueError as e:
            raise ParameterError(f"eis_cycles: {e}") from None

    def start_eis(self) -> None:
        self.impedance = self.bench.role("impedance") if self.eis else None
        self.schedule = parse_cycles(self.eis_cycles) if self.eis else None
        self.eis_spectra: list[dict] = []
        self.eis_stored = 0  # spectra in spectra.csv: a spectrum re-measured after a KK failure is stored twice
        self.eis_short: dict | None = None

    def eis_due(self, cycle: int) -> bool:
        return self.schedule is not None and self.schedule.includes(cycle)

    def cycle_spectrum(self, cycle: int, when: str) -> None:
        """Rest the channel, then measure, store and fit a spectrum; a fall of R_HF records the short signal."""
        self.cycler.rest()
        reading = self.cycler.read()
        t, bias_V = reading.test_time_s, open_circuit_voltage(reading)
        refusal = self.bias_refusal(bias_V)
        if refusal:
            self.emit("event", {"kind": "spectrum_refused", "cycle": cycle, "dc_bias_V": bias_V, "message": refusal})
            return
        SpectrumParameters.configure_analyzer(_ImpedanceView(self, self.impedance), bias_V)
        taken = self.take_spectrum(self.impedance, lambda sweep: self._store_spectrum(sweep.points, t, cycle))
        summary: dict[str, Any] = {"index": taken.index, "test_time_h": t / SECONDS_PER_HOUR, "cycle": cycle,
                                   "when": when, "dc_bias_V": bias_V, **taken.quality()}
        if taken.fit is not None:
            summary |= {k: taken.fit[k] for k in ("R_HF_ohm", "R_b_ohm", "R_tot_ohm", "R_int_ohm", "kk_pass")}
        self.eis_spectra.append(summary)
        self.emit("event", {"kind": "spectrum", **summary})
        self._check_fall(summary)

    def _store_spectrum(self, points: list[Point], test_time_s: float, cycle: int) -> int:
        """Store a spectrum taken at rest after ``cycle``; its index in spectra.csv."""
        self.eis_stored += 1
        self.emit("spectrum", {"index": self.eis_stored, "test_time_s": test_time_s, "cycle": cycle,
                               "step": self.step_count, "points": points})
        return self.eis_stored

    def _check_fall(self, summary: dict) -> None:
        fitted = [s for s in self.eis_spectra if s.get("R_HF_ohm") is not None]
        if len(fitted) < 2 or summary.get("R_HF_ohm") is None or self.eis_short is not None:
            return
        reference = fitted[0]["R_HF_ohm"]
        if summary["R_HF_ohm"] >= R_HF_FALL * reference:
            return
        self.eis_short = {
            "kind": "eis_short", "cycle": summary["cycle"], "test_time_h": summary["test_time_h"],
            "spectrum": summary["index"], "R_HF_ohm": summary["R_HF_ohm"], "reference_R_HF_ohm": reference,
            "detail": f"R_HF fell to {summary['R_HF_ohm']:.4g} Ω, below {R_HF_FALL:g} × the first spectrum's "
                      f"{reference:.4g} Ω: the electrolyte conducts electronically (a short)",
        }  # fmt: skip
        self.emit("event", dict(self.eis_short))

    def eis_result(self) -> dict[str, Any] | None:
        """The spectra's summaries and the short signal (None when no spectra were asked for)."""
        if not self.eis:
            return None
        return {"cycles": self.eis_cycles, "spectra": self.eis_spectra, "short": self.eis_short}
