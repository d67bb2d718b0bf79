"""What every CE analyzer shares: the half-cycles of the stream, their charge and end, cycles, and the result.

The definitions are in :mod:`labctl.analysis.ce`'s docstring. A variant (:mod:`~labctl.analysis.ce_halfcell`,
:mod:`~labctl.analysis.ce_reservoir`, :mod:`~labctl.analysis.ce_fullcell`) supplies its voltage limits, when a cycle
opens, its short criteria, its table row and what its result adds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from labctl.analysis.ce_halfcycle import Counters, HalfCycle, stored
from labctl.analysis.ce_results import CEFinding, CEResult, CEVariant, EndReason, FullCellCycle, HalfCellCycle
from labctl.analysis.checks import SettingError, positive, sig_or_none
from labctl.analysis.segments import Charge, Row, Split, check_sample
from labctl.units import SECONDS_PER_HOUR, areal_mAh_cm2

RESULT_DIGITS = 6  # what the data carry, and the same live and after a CSV round trip
VOLTAGE_TOLERANCE_V = 0.005  # labctl: "at the limit" within a few mV of it
LIMIT_FRACTION = 0.01  # labctl: a charge or duration within 1 % of its limit ended there
SETTLE_S = 2.0  # detectors skip the first 2 s of a half-cycle, the current change (as CCDAnalyzer's default)

CycleRow = HalfCellCycle | FullCellCycle  # a row of a CE table


class CEStream(ABC):
    """Streaming CE analysis of one variant; see :mod:`labctl.analysis.ce` for definitions and criteria.

    Feed every sample with :meth:`add` (it returns findings: finished cycles and a short), call :meth:`finish` at
    the end of the test, then :meth:`result`. After a short the analyzer ignores further data, like
    :class:`~labctl.analysis.ccd.CCDAnalyzer`; :attr:`failure` tells the procedure to stop.
    """

    variant: ClassVar[CEVariant]
    OPENING: ClassVar[int]  # the sign of the half-cycle that opens a cycle
    COUNTS_CE: ClassVar[bool] = True  # its rows' CEs make the mean and last CE

    def __init__(
        self,
        area_cm2: float,
        *,
        cutoff_V: float = 0.2,
        lower_V: float | None = None,
        upper_V: float | None = None,
        time_limit_s: float | None = None,
        capacity_mAh_cm2: float | None = None,
        cathode_mass_mg: float | None = None,
        reference_cycle: int | None = None,
    ) -> None:
        """``area_cm2``: electrode area (cm²). ``cutoff_V``: half cells, the anodic cutoff of strips (V, > 0; Wang
        0.2, Sandoval 0.5). ``lower_V``: the lower voltage limit (V): half cells, the plating safety limit (< 0;
        default −0.5); full cells, the discharge cutoff (default: unknown). ``upper_V``: full cells, the charge
        cutoff (V). ``time_limit_s``: the half-cycle time limit (s), if any (Sandoval: 4 h). ``capacity_mAh_cm2``:
        the planned charge per plating (half cells) or per charge (full cells), mAh/cm², if any.
        ``cathode_mass_mg``: full cells, active cathode mass (mg) for mAh/g. ``reference_cycle``: full cells, the
        cycle retention is relative to (default: the first complete cycle; give the first cycle after activation).
        Settings of another variant are ignored."""
        positive("area_cm2", area_cm2, "the electrode area in cm² (12 mm diameter: 1.131)")
        self.area_cm2 = float(area_cm2)
        self.cutoff_V, self.lower_V, self.upper_V = self._voltage_limits(cutoff_V, lower_V, upper_V)
        for name, value, hint in (
            ("time_limit_s", time_limit_s, "the half-cycle time limit in s"),
            ("capacity_mAh_cm2", capacity_mAh_cm2, "the planned charge in mAh/cm²"),
            ("cathode_mass_mg", cathode_mass_mg, "the active cathode mass in mg"),
        ):
            if value is not None:
                positive(name, value, f"{hint}, or None")
        if reference_cycle is not None and not (isinstance(reference_cycle, int) and reference_cycle >= 0):
            raise SettingError("reference_cycle", "reference_cycle must be a cycle number (>= 0) or None, "
                               f"got {reference_cycle!r}")
        self.time_limit_s, self.capacity_mAh_cm2 = time_limit_s, capacity_mAh_cm2
        self.cathode_mass_mg, self.reference_cycle = cathode_mass_mg, reference_cycle
        self.split = Split(self.area_cm2)
        self._charge = Charge(self.split)
        self._latest: HalfCycle | None = None
        self._group: list[HalfCycle] = []
        self._runs, self._last_sign, self._groups = 0, 0, 0  # runs of same-sign half-cycles, cycles opened
        self._rows: list[CycleRow] = []
        self._plated_mAh_cm2 = self._stripped_mAh_cm2 = 0.0
        self._counters = Counters()
        self._failure: CEFinding | None = None
        self._finished = False

    # -- what a variant supplies

    @abstractmethod
    def _voltage_limits(
        self, cutoff_V: float, lower_V: float | None, upper_V: float | None
    ) -> tuple[float | None, float | None, float | None]:
        """The variant's (cutoff, lower, upper) limits in V, checked; the ones it does not use are None."""

    @abstractmethod
    def _limit_V(self, sign: int) -> float | None:
        """The voltage limit that ends a half-cycle of this sign, V."""

    @abstractmethod
    def _detect_short(self, hc: HalfCycle, t: float, v: float) -> CEFinding | None:
        """A short shown by the latest sample of ``hc`` (past its first ``SETTLE_S``)."""

    @abstractmethod
    def _row(self, group: list[HalfCycle], label: int, last: bool) -> CycleRow:
        """The table row of a finished cycle."""

    def _extras(self, rows: tuple[CycleRow, ...]) -> dict[str, Any]:
        """What the variant adds to the result: the reservoir CE, retention and fade."""
        return {"reservoir": None, "reference_cycle": self.reference_cycle, "retention_percent": None,
                "fade_percent_per_cycle": None}

    def _starts_group(self, sign: int) -> bool:
        """A half-cycle of ``sign`` opens a cycle: it is the opening sign after a half-cycle of the other."""
        return sign == self.OPENING and any(h.sign != sign for h in self._group)

    def _open_group(self) -> None:  # noqa: B027 (an optional hook)
        """A cycle was opened (the reservoir reads its phase here)."""

    def _overrun_limit(self, sign: int) -> float | None:
        """The charge a new half-cycle may pass before it runs on a short, mAh/cm² (None: not checked)."""
        return None

    def _on_close(self, hc: HalfCycle) -> list[CEFinding]:
        """What the instrument ending ``hc`` reveals."""
        return []

    def _reduce(self, hc: HalfCycle) -> None:  # noqa: B027 (an optional hook)
        """Statistics of a finished half-cycle, from its samples."""

    def _counted(self, hc: HalfCycle, capacity_mAh_cm2: float) -> None:  # noqa: B027 (an optional hook)
        """A finished half-cycle's charge is counted."""

    def _emptied(self, hc: HalfCycle) -> bool:
        """``hc`` ran to its voltage limit although its last reading was short of it."""
        return False

    def _overdrawn(self, hc: HalfCycle, capacity_mAh_cm2: float) -> bool:
        """``hc`` passed more than there was to pass (so a guard in time ended it)."""
        return False

    def _counted_label(self) -> int:
        """The open cycle's number for data without ``Cycle Count``."""
        return self._groups

    @property
    def failure(self) -> CEFinding | None:
        """The short that ends the test, or None."""
        return self._failure

    # -- feeding

    def add(
        self,
        test_time_s: float,
        voltage_V: float,
        current_A: float,
        cycle: int | None,
        step: int,
        charge_Ah: float | None = None,
        discharge_Ah: float | None = None,
    ) -> list[CEFinding]:
        """One sample: test time (s), voltage (V), current (A, positive strips/charges), BDF cycle count (None if
        unknown) and step count, the instrument's cumulative charging and discharging capacity counters (Ah, None
        if unknown). Returns what it revealed: finished cycles and a short."""
        check_sample({"test_time_s": test_time_s, "voltage_V": voltage_V, "current_A": current_A}, "test_time_s",
                     self._counters.last_t_s)
        if self._finished:
            raise RuntimeError("the analyzer has finished; make a new one for another test")
        if self._failure is not None:
            return []
        # the analysis sees the samples as the run store keeps them, so a live run and the analysis of its file agree
        t, v, i = stored(test_time_s), stored(voltage_V), stored(current_A)
        dt, gained = self._counters.step(t, i, charge_Ah, discharge_Ah)
        dq = self._charge.add(dt, i, step)
        if self.split.is_rest(i):
            return self._rest(v, dq, gained)
        found: list[CEFinding] = []
        hc = self._latest
        sign = 1 if i > 0 else -1
        if hc is None or hc.step != step or hc.sign != sign:
            found += self._begin(t, sign, step, cycle)
            if self._failure is not None:
                return found
            hc = self._latest
            assert hc is not None
            hc.q_int_Ah += dq  # the current ran since the previous row
        else:
            hc.closed = False  # the current resumed within its step
            hc.q_int_Ah += dq
            hc.v_dq_VAh += (hc.v_last_V + v) / 2 * dq
            hc.dq_between_Ah += dq
        hc.credit(gained)
        if hc.samples:
            hc.t_before_s, hc.v_before_V = hc.t_last_s, hc.v_last_V
        hc.t_last_s, hc.v_last_V, hc.i_last_A, hc.q_at_last_Ah = t, v, abs(i), hc.q_int_Ah
        assert hc.samples is not None
        hc.samples.append((hc.q_int_Ah, v, abs(i)))
        if t - hc.t_first_s >= SETTLE_S:
            short = self._detect_short(hc, t, v)
            if short is not None:
                found.append(short)
        return found

    def feed(self, row: Row) -> list[CEFinding]:
        """One recorded row (:func:`labctl.analysis.replay.replay`)."""
        return self.add(row.t_s, row.voltage_V, row.current_A, row.cycle, row.step, row.charge_Ah, row.discharge_Ah)

    def finish(self) -> list[CEFinding]:
        """The test has ended: the last cycle is complete (a half-cycle the instrument did not end is ``stopped``).
        Returns the findings of that (usually the last cycle's row)."""
        if self._finished:
            return []
        self._finished = True
        if self._latest is not None:
            self._seal(self._latest)
        return self._complete_group(last=True) if self._group else []

    # -- the result

    def result(self) -> CEResult:
        """The result over the finished cycles (all of them once :meth:`finish` was called)."""
        rows = tuple(self._rows)
        ces = [r.ce_percent for r in rows
               if r.ce_percent is not None and "incomplete" not in r.flags and self.COUNTS_CE]
        limits = {
            "cutoff_V": self.cutoff_V,
            "lower_V": self.lower_V,
            "upper_V": self.upper_V,
            "time_limit_h": None if self.time_limit_s is None else self.time_limit_s / SECONDS_PER_HOUR,
            "capacity_mAh_cm2": self.capacity_mAh_cm2,
            "cathode_mass_mg": self.cathode_mass_mg,
        }
        return CEResult(
            variant=self.variant, area_cm2=self.area_cm2, cycles=rows, cycles_completed=len(ces),
            mean_ce_percent=sig(sum(ces) / len(ces)) if ces else None, last_ce_percent=ces[-1] if ces else None,
            short=self._failure, test_time_h=(self._counters.last_t_s or 0.0) / SECONDS_PER_HOUR, limits=limits,
            **self._extras(rows))  # fmt: skip

    # -- half-cycles

    def _rest(self, v: float, dq: float, gained: tuple[float, float] | None) -> list[CEFinding]:
        """A reading at rest: the step's own closes its half-cycle (the instrument ran it until then)."""
        hc = self._latest
        if hc is None:
            return []
        hc.q_int_Ah += dq
        if hc.rest_V is None:
            hc.rest_V = v
        hc.credit(gained)
        return [] if hc.closed else self._close(hc)

    def _begin(self, t: float, sign: int, step: int, cycle: int | None) -> list[CEFinding]:
        """A new half-cycle: the previous one ended (and is checked), a cycle may be complete."""
        found: list[CEFinding] = []
        previous = self._latest
        if previous is not None:
            if not previous.closed:
                found += self._close(previous)
                if self._failure is not None:
                    return found
            self._seal(previous)
        if sign != self._last_sign:
            self._runs, self._last_sign = self._runs + 1, sign
        if not self._group or self._starts_group(sign):
            if self._group:
                found += self._complete_group(last=False)
            self._groups += 1
            self._open_group()
        hc = HalfCycle(sign=sign, step=step, cycle=cycle, t_first_s=t,
                       inventory_mAh_cm2=self._plated_mAh_cm2 - self._stripped_mAh_cm2,
                       overrun_limit_mAh_cm2=self._overrun_limit(sign))  # fmt: skip
        self._group.append(hc)
        self._latest = hc
        return found

    def _close(self, hc: HalfCycle) -> list[CEFinding]:
        """The instrument ended ``hc``."""
        hc.closed = True
        return self._on_close(hc)

    def _seal(self, hc: HalfCycle) -> None:
        """Reduce a finished half-cycle to its statistics and count its lithium."""
        if hc.samples is None:
            return
        hc.current_A = hc.typical_current_A
        self._reduce(hc)
        hc.samples = None
        capacity = self.capacity(hc)
        if hc.sign < 0:
            self._plated_mAh_cm2 += capacity
        else:
            self._stripped_mAh_cm2 += capacity
        self._counted(hc, capacity)

    def capacity(self, hc: HalfCycle) -> float:
        """The charge ``hc`` passed, mAh/cm²."""
        return areal_mAh_cm2(hc.charge_Ah, self.area_cm2)

    def end(self, hc: HalfCycle, role: Literal["planned", "cutoff"]) -> EndReason:
        """What ended ``hc`` (:mod:`labctl.analysis.ce`); ``planned``: it passes a planned charge, ``cutoff``: it
        runs to its voltage limit."""
        limit = self._limit_V(hc.sign)
        if limit is not None and hc.sign * (self._end_voltage(hc) - limit) >= -VOLTAGE_TOLERANCE_V:
            return "voltage"
        if self._emptied(hc):
            return "voltage"
        capacity = self.capacity(hc)
        planned = self.capacity_mAh_cm2
        if role == "planned" and planned and abs(capacity - planned) <= LIMIT_FRACTION * planned:
            return "capacity"
        if self.time_limit_s and abs(self._duration_s(hc) - self.time_limit_s) <= LIMIT_FRACTION * self.time_limit_s:
            return "time"
        if not hc.closed:
            return "stopped"
        if role == "planned":
            return "capacity"
        return "time" if self._overdrawn(hc, capacity) else "voltage"

    def _duration_s(self, hc: HalfCycle) -> float:
        """Time under current: charge over the (constant) current, exact whatever the sampling."""
        return hc.charge_Ah * SECONDS_PER_HOUR / hc.typical_current_A

    def _end_voltage(self, hc: HalfCycle) -> float:
        """The voltage when the current stopped: the last sample's, carried along the last two samples' slope to
        the end of a half-cycle the instrument ended after that sample."""
        if not hc.closed or hc.t_before_s is None or hc.v_before_V is None or hc.t_last_s <= hc.t_before_s:
            return hc.v_last_V
        left_s = max(0.0, hc.charge_Ah - hc.q_at_last_Ah) * SECONDS_PER_HOUR / hc.i_last_A
        slope = (hc.v_last_V - hc.v_before_V) / (hc.t_last_s - hc.t_before_s)
        return hc.v_last_V + slope * left_s

    def short(self, hc: HalfCycle, t: float, criterion: str, detail: str) -> CEFinding:
        """The short that ends the test, found in ``hc`` at ``t`` (s)."""
        self._failure = CEFinding(kind="hard_short", t_s=t, cycle=self._label(hc), step=hc.step, detail=detail,
                                  ends_test=True, criterion=criterion)
        return self._failure

    # -- cycles

    def _label(self, hc: HalfCycle | None = None) -> int:
        """The open cycle's number: the data's Cycle Count, else counted (:mod:`labctl.analysis.ce`)."""
        first = hc if hc is not None and hc.cycle is not None else (self._group[0] if self._group else None)
        if first is not None and first.cycle is not None:
            return first.cycle
        return self._counted_label()

    def _complete_group(self, last: bool) -> list[CEFinding]:
        group, label = self._group, self._label()
        row = self._row(group, label, last)
        self._rows.append(row)
        self._group = []
        end = group[-1]
        return [CEFinding(kind="cycle_completed", t_s=end.t_last_s, cycle=label, step=end.step,
                          detail=f"cycle {label} complete", row=row.to_dict())]


def flags(ce: float | None, end: EndReason | None, cut: bool) -> tuple[str, ...]:
    """A row's flags: its CE a lower bound (ended by time), above 100 %, or the cycle cut short."""
    found = []
    if ce is not None and end == "time":
        found.append("ce_lower_bound")
    if ce is not None and ce > 100:
        found.append("ce_above_100")
    if cut:
        found.append("incomplete")
    return tuple(found)


def sig(x: float | None) -> float | None:
    """A result value to the digits the data carry."""
    return sig_or_none(x, RESULT_DIGITS)
