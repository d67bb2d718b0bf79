"""The ``reservoir`` CE variant (Adams et al. 2018 as run by Wang et al. 2024; :mod:`labctl.analysis.ce`).

[formation plate, formation strip to the cutoff, reservoir plate Q_T, n × (strip Q_c, plate Q_c), final strip Q_S to
the cutoff]; CE = (Σ strips of the n cycles + Q_S) / (Σ plates of the n cycles + Q_T). The phases are the runs of
same-sign half-cycles, in that order; a last lone strip is the final strip.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labctl.analysis.ce_halfcell import HalfCellAnalyzer
from labctl.analysis.ce_halfcycle import HalfCycle
from labctl.analysis.ce_results import CEVariant, HalfCellCycle, Phase, ReservoirCE
from labctl.analysis.ce_stream import LIMIT_FRACTION, CycleRow, sig


class ReservoirAnalyzer(HalfCellAnalyzer):
    """The reservoir protocol's phases as table rows (formation, reservoir, cycle k, final) and its CE."""

    variant: ClassVar[CEVariant] = "reservoir"
    COUNTS_CE: ClassVar[bool] = False  # the reservoir CE is the answer, not a mean over rows

    def __init__(self, area_cm2: float, **settings: Any) -> None:
        super().__init__(area_cm2, **settings)
        self._phase: tuple[Phase, int] | None = None  # the open group's phase and its cycle k
        self._formation_plate: float | None = None
        self._reservoir_plate: float | None = None

    def _starts_group(self, sign: int) -> bool:
        return _reservoir_phase(self._runs) != self._phase

    def _open_group(self) -> None:
        self._phase = _reservoir_phase(self._runs)

    def _counted_label(self) -> int:
        if self._phase is None:
            return self._groups
        return {"formation": 0, "reservoir": 1}.get(self._phase[0], self._phase[1])

    def _phase_rules(self, phase: Phase) -> tuple[bool, bool, bool]:
        return phase == "formation", phase == "cycle", phase == "cycle"

    def _group_phase(self, last: bool) -> Phase:
        """A last lone strip is the final strip unless it is a cycle strip cut short (stopped within the cycles'
        strip charge)."""
        if self._phase is None:
            return "cycle"
        phase = self._phase[0]
        if last and phase == "cycle" and all(h.sign > 0 for h in self._group):
            strip = self._group[-1]
            cycled = [r.strip_mAh_cm2 for r in self._rows
                      if isinstance(r, HalfCellCycle) and r.phase == "cycle" and r.strip_mAh_cm2 is not None]
            cut_short = not strip.closed and (not cycled or self.capacity(strip) <= max(cycled) * (1 + LIMIT_FRACTION))
            return "cycle" if cut_short else "final"
        return phase

    def _overrun_limit(self, sign: int) -> float | None:
        if sign > 0 and self._reservoir_plate is not None and self._formation_plate is not None:
            return self._reservoir_plate + self._formation_plate
        return super()._overrun_limit(sign)

    def _overrun_basis(self) -> str:
        if self._reservoir_plate is not None:
            return "Q_T plus the formation plating"
        return super()._overrun_basis()

    def _counted(self, hc: HalfCycle, capacity_mAh_cm2: float) -> None:
        """Q_T and the formation plating: the platings of the first and third runs."""
        if hc.sign > 0:
            return
        if self._runs == 1:
            self._formation_plate = (self._formation_plate or 0.0) + capacity_mAh_cm2
        elif self._runs == 3:
            self._reservoir_plate = (self._reservoir_plate or 0.0) + capacity_mAh_cm2

    def _extras(self, rows: tuple[CycleRow, ...]) -> dict[str, Any]:
        return super()._extras(rows) | {"reservoir": reservoir_ce(rows)}


def reservoir_ce(rows: tuple[CycleRow, ...]) -> ReservoirCE:
    """The reservoir CE from the phase rows (science.md §2.1)."""
    half = [r for r in rows if isinstance(r, HalfCellCycle)]
    formation = next((r for r in half if r.phase == "formation"), None)
    reservoir = next((r for r in half if r.phase == "reservoir"), None)
    final = next((r for r in half if r.phase == "final"), None)
    cycles = [r for r in half if r.phase == "cycle" and r.plate_mAh_cm2 is not None and r.strip_mAh_cm2 is not None]
    strips = sum(r.strip_mAh_cm2 or 0.0 for r in cycles)
    plates = sum(r.plate_mAh_cm2 or 0.0 for r in cycles)
    q_t = reservoir.plate_mAh_cm2 if reservoir else None
    q_s = final.strip_mAh_cm2 if final else None
    formation_plate = formation.plate_mAh_cm2 if formation else None
    ce = sig(100 * (strips + q_s) / (plates + q_t)) if q_t and q_s is not None else None
    flags = []
    if final is not None and final.strip_end == "time":
        flags.append("lower_bound")
    if (final is not None and q_s is not None and final.strip_end != "voltage" and q_t is not None
            and q_s > q_t + (formation_plate or 0.0)):
        flags.append("suspect_short")
    return ReservoirCE(
        ce_percent=ce, n=len(cycles), Q_c_mAh_cm2=sig(plates / len(cycles)) if cycles else None,
        Q_T_mAh_cm2=q_t, Q_S_mAh_cm2=q_s, cycled_strip_mAh_cm2=sig(strips), cycled_plate_mAh_cm2=sig(plates),
        formation_plate_mAh_cm2=formation_plate,
        formation_strip_mAh_cm2=formation.strip_mAh_cm2 if formation else None,
        initial_ce_percent=formation.ce_percent if formation else None,
        final_strip_end=final.strip_end if final else None, flags=tuple(flags))  # fmt: skip


def _reservoir_phase(runs: int) -> tuple[Phase, int]:
    """The reservoir phase of the ``runs``-th run of same-sign half-cycles and its cycle k."""
    if runs <= 2:
        return "formation", 0
    if runs == 3:
        return "reservoir", 1
    return "cycle", (runs - 2) // 2
