"""Li|SE|collector half cells: plating and stripping, overpotentials, and their shorts (:mod:`labctl.analysis.ce`).

:class:`HalfCellAnalyzer` is what the half-cell variants share; :class:`CyclingAnalyzer` is the ``cycling`` variant
(CE_i = Q_strip,i / Q_plate,i per cycle); the reservoir variant is :mod:`labctl.analysis.ce_reservoir`.
"""

from __future__ import annotations

from collections import deque
from statistics import median
from typing import ClassVar

from labctl.analysis.ce_halfcycle import HalfCycle
from labctl.analysis.ce_results import CEFinding, CEVariant, EndReason, HalfCellCycle, Phase
from labctl.analysis.ce_stream import LIMIT_FRACTION, VOLTAGE_TOLERANCE_V, CEStream, flags, sig
from labctl.analysis.checks import SettingError, positive
from labctl.units import SECONDS_PER_HOUR

HALF_CELL_LOWER_V = -0.5  # plating safety limit of Sandoval's −0.5…0.5 V window (PROTOCOLS.md §2b)
# The nucleation dip (≈0.01 mAh/cm²) and alloying (≈0.06 mAh/cm² per 100 nm Ag, ≈0.2 for Wang's Mg film) come first
# in a plating (science.md §4.3): the dip lies in the first 20 % of its charge, the Li plating plateau in the second
# half, whatever the film.
NUCLEATION_WINDOW, PLATEAU_FROM = 0.2, 0.5
DIP_MIN_FRACTION, DIP_MIN_V = 0.1, 0.001  # labctl: a dip < 10 % of the plateau (or < 1 mV) is noise, no dip
# The de-alloying plateaus and the end-of-strip spike (science.md §4.3) rise far above the Li-metal plateau: in the
# second half of a strip, samples above 3 × the first half's median are the tail, not the plateau.
TAIL_FACTOR = 3.0
# With lithium metal on it the working electrode rests at 0 V against the Li counter electrode; emptied, it rests at its
# film's or the collector's potential, far above (science.md §4.3): a reading at rest after a strip above a quarter
# of the cutoff means the strip took all the Li metal and ended at the cutoff.
EMPTY_REST_FRACTION = 0.25
COLLAPSE_FRACTION = 0.5  # science.md §1.3: |V| collapsing to ≤ 50 % of its level is a short
REFERENCE_HALF_CYCLES = 5  # the plateau level of the last 5 half-cycles of a direction
OVERRUN_FRACTION = 0.1  # labctl: a strip passing > 110 % of its cycle's plating runs on a short (CE > 100 % cases
# from reservoir artefacts are a few % at most, science.md §2.2)


class HalfCellAnalyzer(CEStream):
    """What the half-cell variants share: a cycle opens with a plating; plateaus and the nucleation dip; the
    collapse and overrun shorts. A variant's phases decide which rows carry a CE (:meth:`_phase_rules`)."""

    OPENING: ClassVar[int] = -1

    def __init__(self, area_cm2: float, **settings: float | int | None) -> None:
        super().__init__(area_cm2, **settings)  # type: ignore[arg-type]
        self._plateaus: dict[int, deque[float]] = {
            1: deque(maxlen=REFERENCE_HALF_CYCLES),
            -1: deque(maxlen=REFERENCE_HALF_CYCLES),
        }

    def _voltage_limits(
        self, cutoff_V: float, lower_V: float | None, upper_V: float | None
    ) -> tuple[float | None, float | None, float | None]:
        positive("cutoff_V", cutoff_V, "the anodic cutoff of the strips in V, e.g. 0.2")
        lower_V = HALF_CELL_LOWER_V if lower_V is None else lower_V
        if not (isinstance(lower_V, (int, float)) and lower_V < 0):
            raise SettingError("lower_V", "lower_V must be below 0 V for a half cell (plating is negative), "
                               f"got {lower_V!r}")
        return float(cutoff_V), lower_V, None

    def _limit_V(self, sign: int) -> float | None:
        return self.cutoff_V if sign > 0 else self.lower_V

    def _phase_rules(self, phase: Phase) -> tuple[bool, bool, bool]:
        """For a row of ``phase``: (it has a CE, its strip passes a planned charge, it needs both half-cycles)."""
        return True, False, False

    def _group_phase(self, last: bool) -> Phase:
        """The phase of the open cycle (``last``: the data ended in it)."""
        return "cycle"

    def _overrun_basis(self) -> str:
        return f"{100 * (1 + OVERRUN_FRACTION):.0f} % of the charge plated in this cycle"

    def _overrun_limit(self, sign: int) -> float | None:
        if sign < 0:
            return None
        plated = self._plated_in_cycle()
        return (1 + OVERRUN_FRACTION) * plated if plated > 0 else None

    def _plated_in_cycle(self) -> float:
        return sum(self.capacity(h) for h in self._group if h.sign < 0)

    def _reduce(self, hc: HalfCycle) -> None:
        if not hc.samples:
            return
        if hc.sign < 0:
            hc.plateau_V, hc.nucleation_V = _plating_plateau(hc.samples, hc.q_int_Ah)
        else:
            hc.plateau_V = _stripping_plateau(hc.samples, hc.q_int_Ah)
        if hc.plateau_V is not None and hc.sign * hc.plateau_V > 0:
            self._plateaus[hc.sign].append(hc.sign * hc.plateau_V)

    def _emptied(self, hc: HalfCycle) -> bool:
        """The electrode rests with no Li metal left: the strip ran to the cutoff."""
        return bool(self.cutoff_V and hc.sign > 0 and hc.rest_V is not None
                    and hc.rest_V >= EMPTY_REST_FRACTION * self.cutoff_V)

    def _overdrawn(self, hc: HalfCycle, capacity_mAh_cm2: float) -> bool:
        return capacity_mAh_cm2 > hc.inventory_mAh_cm2 * (1 + LIMIT_FRACTION)

    # -- shorts

    def _detect_short(self, hc: HalfCycle, t: float, v: float) -> CEFinding | None:
        if hc.sign > 0 and hc.overrun_limit_mAh_cm2 is not None and self.cutoff_V is not None:
            passed = self.capacity(hc)
            if passed > hc.overrun_limit_mAh_cm2 and v < self.cutoff_V - VOLTAGE_TOLERANCE_V:
                return self.short(hc, t, "overrun", (
                    f"the strip passed {passed:.4g} mAh/cm² below the {self.cutoff_V:g} V cutoff, more than the "
                    f"{hc.overrun_limit_mAh_cm2:.4g} mAh/cm² of lithium it could hold ({self._overrun_basis()})"))
        reference = self._reference(hc.sign)
        if reference is None:
            return None
        line_V = COLLAPSE_FRACTION * reference
        if not hc.armed:
            hc.armed = hc.sign * v >= line_V
            return None
        onset = hc.low.update(t, hc.sign * v < line_V, v)
        if onset is None:
            return None
        what = "plating" if hc.sign < 0 else "stripping"
        return self.short(hc, onset[0], "collapse", (
            f"|V| fell to {abs(v) * 1e3:.3g} mV while {what} (from {abs(onset[1]) * 1e3:.3g} mV at the "
            f"onset), below half of the {reference * 1e3:.3g} mV plateau of the previous half-cycles"))

    def _reference(self, sign: int) -> float | None:
        """The plateau |V| of recent half-cycles of this direction (of the other one before there are any)."""
        levels = self._plateaus[sign] or self._plateaus[-sign]
        return median(levels) if levels else None

    # -- rows

    def _row(self, group: list[HalfCycle], label: int, last: bool) -> HalfCellCycle:
        phase = self._group_phase(last)
        with_ce, planned_strip, needs_both = self._phase_rules(phase)
        plates, strips = [h for h in group if h.sign < 0], [h for h in group if h.sign > 0]
        plate = sig(sum(self.capacity(h) for h in plates)) if plates else None
        strip = sig(sum(self.capacity(h) for h in strips)) if strips else None
        plate_end: EndReason | None = self.end(plates[-1], "planned") if plates else None
        strip_end = self.end(strips[-1], "planned" if planned_strip else "cutoff") if strips else None
        ce = sig(100 * strip / plate) if with_ce and plate and strip is not None else None
        main_plate = max(plates, key=self.capacity) if plates else None
        main_strip = max(strips, key=self.capacity) if strips else None
        cut = "stopped" in (plate_end, strip_end) or (with_ce and ce is None) or (needs_both and not (plates and strips))
        return HalfCellCycle(
            cycle=label, phase=phase, plate_mAh_cm2=plate, strip_mAh_cm2=strip, ce_percent=ce,
            plating_overpotential_mV=_mV(main_plate.plateau_V if main_plate else None),
            stripping_overpotential_mV=_mV(main_strip.plateau_V if main_strip else None),
            nucleation_overpotential_mV=_mV(plates[0].nucleation_V if plates else None),
            plate_end=plate_end, strip_end=strip_end, flags=flags(ce, strip_end, cut),
            end_time_h=group[-1].t_last_s / SECONDS_PER_HOUR)  # fmt: skip


class CyclingAnalyzer(HalfCellAnalyzer):
    """The ``cycling`` variant: each cycle plates a fixed capacity and strips to the anodic cutoff; a strip that
    runs into the time limit after passing the plated charge could not polarise (``time_end`` short)."""

    variant: ClassVar[CEVariant] = "cycling"

    def _on_close(self, hc: HalfCycle) -> list[CEFinding]:
        if hc.sign < 0 or self.end(hc, "cutoff") != "time":
            return []
        plated, stripped = self._plated_in_cycle(), self.capacity(hc)
        if plated <= 0 or stripped < plated:
            return []
        limit = f"the {self.time_limit_s / SECONDS_PER_HOUR:.3g} h time limit" if self.time_limit_s else "a time limit"
        return [self.short(hc, hc.t_last_s, "time_end", (
            f"the strip ran into {limit} below the {self.cutoff_V:g} V cutoff after passing {stripped:.4g} mAh/cm², "
            f"at least the {plated:.4g} mAh/cm² plated (CE {100 * stripped / plated:.1f} %): the cell could not "
            "polarise"))]


def _plating_plateau(samples: list[tuple[float, float, float]], total_Ah: float) -> tuple[float | None, float | None]:
    """(signed median V over the second half of the charge, depth of the nucleation dip or 0).

    The dip is measured from its tip (the most negative V in the nucleation window) to the highest V after it in
    the window: the level the voltage recovers to, which is the Li plating plateau on bare Cu and the alloying
    plateau on an alloying film (Mg/W-Cu: a 27 mV dip onto a plateau near 0 V, Wang et al.)."""
    late = [v for q, v, _ in samples if q > PLATEAU_FROM * total_Ah]
    if not late:
        return None, None
    plateau = median(late)
    early = [v for q, v, _ in samples if q <= NUCLEATION_WINDOW * total_Ah]
    if not early:
        return plateau, None
    tip = early.index(min(early))
    depth = max(early[tip + 1 :]) - early[tip] if tip + 1 < len(early) else 0.0
    return plateau, depth if depth > max(DIP_MIN_V, DIP_MIN_FRACTION * abs(plateau)) else 0.0


def _stripping_plateau(samples: list[tuple[float, float, float]], total_Ah: float) -> float | None:
    """Median V over the Li-metal stripping plateau: without the tail of the second half that rises above
    ``TAIL_FACTOR`` × the first half's median."""
    first = [v for q, v, _ in samples if q <= 0.5 * total_Ah] or [v for _, v, _ in samples]
    level = median(first)
    kept = [v for q, v, _ in samples if q <= 0.5 * total_Ah or level <= 0 or v <= TAIL_FACTOR * level]
    return median(kept) if kept else None


def _mV(v: float | None) -> float | None:
    return None if v is None else sig(abs(v) * 1e3)
