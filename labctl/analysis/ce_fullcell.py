"""The ``fullcell`` CE variant: cathode|SE|collector or cathode|SE|Li cells (:mod:`labctl.analysis.ce`).

CE = Q_discharge / Q_charge per cycle, mean voltages, capacity per gram of cathode, retention against a reference
cycle and its fade; a cycle opens with a charge. Shorts: the voltage falling under constant-current charge
(``voltage_drop``) or a charge passing far more than planned (``charge_overrun``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from labctl.analysis.ce_halfcycle import HalfCycle
from labctl.analysis.ce_results import CEFinding, CEVariant, FullCellCycle
from labctl.analysis.ce_stream import VOLTAGE_TOLERANCE_V, CEStream, CycleRow, flags, sig
from labctl.analysis.checks import SettingError
from labctl.units import SECONDS_PER_HOUR

CHARGE_DROP_V = 0.1  # labctl: a full cell's voltage falling 0.1 V under constant-current charge is a short
CHARGE_OVERRUN_FRACTION = 0.2  # labctl: a charge passing > 120 % of the expected capacity runs on a short


class FullCellAnalyzer(CEStream):
    """Full-cell cycles: charge, discharge, CE, retention and fade, and the charge shorts."""

    variant: ClassVar[CEVariant] = "fullcell"
    OPENING: ClassVar[int] = 1

    def __init__(self, area_cm2: float, **settings: Any) -> None:
        super().__init__(area_cm2, **settings)
        self._ref: tuple[int, float] | None = None  # (cycle, discharge mAh/cm²) retention is relative to
        self._prev_retention: tuple[int, float] | None = None

    def _voltage_limits(
        self, cutoff_V: float, lower_V: float | None, upper_V: float | None
    ) -> tuple[float | None, float | None, float | None]:
        if lower_V is not None and upper_V is not None and not upper_V > lower_V:
            raise SettingError("upper_V", f"upper_V ({upper_V!r} V) must be above lower_V ({lower_V!r} V)")
        return None, lower_V, upper_V

    def _limit_V(self, sign: int) -> float | None:
        return self.upper_V if sign > 0 else self.lower_V

    def _detect_short(self, hc: HalfCycle, t: float, v: float) -> CEFinding | None:
        if hc.sign < 0:
            return None
        hc.v_max_V = max(hc.v_max_V, v)
        onset = hc.low.update(t, v < hc.v_max_V - CHARGE_DROP_V, v)
        if onset is not None:
            return self.short(hc, onset[0], "voltage_drop", (
                f"V fell to {v:.4g} V at constant-current charge, {(hc.v_max_V - v) * 1e3:.0f} mV below the "
                f"charge's maximum of {hc.v_max_V:.4g} V"))
        expected = self.capacity_mAh_cm2
        passed = self.capacity(hc)
        below_top = self.upper_V is None or v < self.upper_V - VOLTAGE_TOLERANCE_V
        if expected and passed > (1 + CHARGE_OVERRUN_FRACTION) * expected and below_top:
            return self.short(hc, t, "charge_overrun", (
                f"the charge passed {passed:.4g} mAh/cm², more than {100 * (1 + CHARGE_OVERRUN_FRACTION):.0f} % of "
                f"the expected {expected:g} mAh/cm², without reaching the upper voltage"))
        return None

    def _row(self, group: list[HalfCycle], label: int, last: bool) -> FullCellCycle:
        charges, discharges = [h for h in group if h.sign > 0], [h for h in group if h.sign < 0]
        charge = sum(self.capacity(h) for h in charges) if charges else None
        discharge = sum(self.capacity(h) for h in discharges) if discharges else None
        charge_end = self.end(charges[-1], "planned") if charges else None
        discharge_end = self.end(discharges[-1], "cutoff") if discharges else None
        ce = 100 * discharge / charge if charge and discharge is not None else None
        cut = ce is None or "stopped" in (charge_end, discharge_end)
        retention = fade = None
        if not cut and discharge:
            retention, fade = self._retention(label, discharge)
        return FullCellCycle(
            cycle=label, charge_mAh_cm2=sig(charge), discharge_mAh_cm2=sig(discharge),
            charge_mAh_g=self._per_gram(charge), discharge_mAh_g=self._per_gram(discharge), ce_percent=sig(ce),
            mean_charge_V=sig(_mean_voltage(charges)), mean_discharge_V=sig(_mean_voltage(discharges)),
            charge_end=charge_end, discharge_end=discharge_end, retention_percent=retention,
            fade_percent_per_cycle=fade, flags=flags(ce, discharge_end, cut),
            end_time_h=group[-1].t_last_s / SECONDS_PER_HOUR)  # fmt: skip

    def _retention(self, cycle: int, discharge_mAh_cm2: float) -> tuple[float | None, float | None]:
        """Retention (%) of this cycle's discharge against the reference cycle's, and the fade since the previous
        complete cycle (percentage points per cycle)."""
        if self._ref is None and (self.reference_cycle is None or cycle >= self.reference_cycle):
            self._ref = (cycle, discharge_mAh_cm2)
        if self._ref is None:
            return None, None
        retention = sig(100 * discharge_mAh_cm2 / self._ref[1])
        fade = None
        if self._prev_retention is not None and cycle > self._prev_retention[0]:
            fade = sig((self._prev_retention[1] - retention) / (cycle - self._prev_retention[0]))
        self._prev_retention = (cycle, retention)
        return retention, fade

    def _per_gram(self, capacity_mAh_cm2: float | None) -> float | None:
        if capacity_mAh_cm2 is None or not self.cathode_mass_mg:
            return None
        return sig(capacity_mAh_cm2 * self.area_cm2 / (self.cathode_mass_mg / 1000))

    def _extras(self, rows: tuple[CycleRow, ...]) -> dict[str, Any]:
        """The reference cycle, the last cycle's retention and the fade: minus the least-squares slope of retention
        from the reference on."""
        retained = [(r.cycle, r.retention_percent) for r in rows
                    if isinstance(r, FullCellCycle) and r.retention_percent is not None]
        fade = None
        if len(retained) >= 2:
            x, y = np.array(retained, dtype=float).T
            fade = sig(-float(np.polyfit(x, y, 1)[0]))
        return super()._extras(rows) | {
            "reference_cycle": self._ref[0] if self._ref else self.reference_cycle,
            "retention_percent": retained[-1][1] if retained else None, "fade_percent_per_cycle": fade}


def _mean_voltage(half_cycles: list[HalfCycle]) -> float | None:
    dq = sum(h.dq_between_Ah for h in half_cycles)
    return sum(h.v_dq_VAh for h in half_cycles) / dq if dq > 0 else None
