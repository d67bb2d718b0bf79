"""The safety supervisor: the cycler channel as every procedure sees it.

The runner hands a procedure a bench whose cycler role is a :class:`Supervisor` around the driver
(:func:`supervised`), so no procedure reaches the instrument past it.

- Before anything is sent, a set-point beyond the channel's range (from the driver's identity) or the run's limits
  is refused, and each segment goes out with the limits tightened into its own (voltage window, |charge|, time left
  of the test, the |I| clamp of a hold), so the instrument holds them even while labctl is slow or gone (Arbin: the
  universal schedule's step limits, docs/arbin-universal-schedule.md).
- Every reading is checked. One the channel cannot have measured (outside its range) is an instrument fault, never
  the cell. One past a limit, or a segment the instrument ended on a limit of the run's rather than the procedure's
  own, rests the channel at once and raises :class:`~labctl.safety.SafetyLimitBreach`: the procedure never sees it
  as its own limit (a voltage limit reached is contact loss to CCD), the runner records a ``safety_limit`` event and
  ends the run ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from labctl.bench import Bench, BenchError
from labctl.procedures.cycling import InstrumentFault
from labctl.roles import CyclerChannel, CyclerReading
from labctl.safety import ChannelRange, LimitError, Limits, SafetyLimitBreach, limits_of
from labctl.units import SECONDS_PER_HOUR

log = logging.getLogger(__name__)

VOLTAGE_MARGIN_V = 0.01  # a reading this close past a voltage limit is noise at a limit the instrument holds itself
MARGIN = 0.01  # likewise for |I| and |charge|, relative to the limit
RANGE_MARGIN = 0.05  # instruments report a little over full scale; farther is no measurement
# a segment's end reason (CyclerReading.end_reason) -> the limit that ends it when the supervisor tightened it
END_REASONS = {"voltage_high": "voltage_max_V", "voltage_low": "voltage_min_V", "charge": "capacity_per_step_Ah",
               "time": "test_time_max_h"}  # fmt: skip


def supervised(bench: Bench, request: dict[str, Any] | None) -> Bench:
    """The bench a procedure is handed: held to the tightest of the bench's, its cycler channel's and the run's
    limits (``request["limits"]``), its cycler wrapped in a Supervisor. BenchError (nothing started) if they leave
    no voltage window."""
    given = ((request or {}).get("limits") or {}).items()
    try:
        view = replace(bench, run_limits=limits_of({k: v for k, v in given if v is not None}), roles=dict(bench.roles))
        limits = view.limits
    except LimitError as e:
        raise BenchError(f"limits: the bench's and the run's limits together: {e}; loosen one of them") from None
    if "cycler" in view.roles:
        view.roles["cycler"] = Supervisor(view.roles["cycler"], limits)
    return view


@dataclass
class _Segment:
    start_Ah: float  # the instrument's charge + discharge counters when it was commanded
    held: dict[str, str] = field(default_factory=dict)  # end reason -> limit of the run's tightened into it


class Supervisor:
    """``channel`` (a CyclerChannel) held to ``limits`` and to its own range."""

    def __init__(self, channel: CyclerChannel, limits: Limits) -> None:
        self._channel, self.limits = channel, limits
        self.range = ChannelRange.of(channel.identity())
        self._last: CyclerReading | None = None  # the last reading: test time and counters before a segment
        self._segment: _Segment | None = None

    def identity(self) -> dict[str, str]:
        return self._channel.identity()

    def begin(self, test_name: str) -> None:
        self._last = self._segment = None
        self._channel.begin(test_name)

    def resume(self, test_name: str, after_test_time_s: float) -> CyclerReading:
        self._segment = None
        self._last = self._channel.resume(test_name, after_test_time_s)
        return self._last

    def apply_current(self, current_A: float, *, max_voltage_V: float, min_voltage_V: float,
                      until_time_s: float | None = None, until_charge_Ah: float | None = None) -> None:
        """Refuse a current beyond the range or |I| limit; send the segment with the run's limits tightened in."""
        self._refuse_current(abs(current_A))
        high = _lowest(max_voltage_V, self.limits.voltage_max_V)
        low = _highest(min_voltage_V, self.limits.voltage_min_V)
        if not high > low:  # the segment's window lies outside the limits': name the limit its far edge crosses
            over = self.limits.voltage_max_V is not None and self.limits.voltage_max_V <= min_voltage_V
            raise self._breach(*(("voltage_max_V", min_voltage_V) if over else ("voltage_min_V", max_voltage_V)),
                               "refused")
        time_s, charge = self._time_left(until_time_s), _lowest(until_charge_Ah, self.limits.capacity_per_step_Ah)
        segment = self._new_segment(voltage_high=high != max_voltage_V, voltage_low=low != min_voltage_V,
                                    charge=charge != until_charge_Ah, time=time_s != until_time_s)
        self._channel.apply_current(current_A, max_voltage_V=high, min_voltage_V=low, until_time_s=time_s,
                                    until_charge_Ah=charge)  # fmt: skip
        self._segment = segment

    def apply_voltage(self, voltage_V: float, *, max_current_A: float, until_time_s: float | None = None,
                      until_current_A: float | None = None) -> None:
        """Refuse a voltage outside the range or the voltage limits; send the hold with its |I| clamp no higher than
        the |I| limit and the range (the instrument holds the clamp: not a breach) and the test's time left."""
        self._refuse_voltage(voltage_V)
        clamp = _lowest(max_current_A, self.limits.current_max_A, self.range.current_range_A)
        if clamp < max_current_A and until_current_A is not None and until_current_A >= clamp:
            raise self._breach("current_max_A" if clamp == self.limits.current_max_A else "current_range_A",
                               until_current_A, "refused")
        time_s = self._time_left(until_time_s)
        segment = self._new_segment(time=time_s != until_time_s)
        self._channel.apply_voltage(voltage_V, max_current_A=clamp, until_time_s=time_s,
                                    until_current_A=until_current_A)  # fmt: skip
        self._segment = segment

    def rest(self) -> None:
        self._segment = None
        self._channel.rest()

    def read(self) -> CyclerReading:
        """The channel's reading, checked: InstrumentFault if it cannot have been measured, SafetyLimitBreach if it
        is past a limit or the instrument ended the segment on one of the run's; the channel rests first."""
        reading = self._channel.read()
        fault = self._unmeasurable(reading)
        if fault is not None:
            self._rest_now()
            raise InstrumentFault(fault)
        breach = self._breach_in(reading)
        self._last = reading
        if breach is not None:
            limit, value, how = breach
            raise self._breach(limit, value, how, test_time_s=reading.test_time_s)
        return reading

    def end(self) -> None:
        self._segment = None
        self._channel.end()

    def close(self) -> None:
        self._channel.close()

    # --- checks ---

    def _refuse_current(self, magnitude_A: float) -> None:
        for name, bound in (("current_range_A", self.range.current_range_A),
                            ("current_max_A", self.limits.current_max_A)):
            if bound is not None and magnitude_A > bound:
                raise self._breach(name, magnitude_A, "refused")

    def _refuse_voltage(self, voltage_V: float) -> None:
        span = self.range.voltage_range_V
        if span is not None and abs(voltage_V) > span:
            raise self._breach("voltage_range_V", voltage_V, "refused")
        if self.limits.voltage_max_V is not None and voltage_V > self.limits.voltage_max_V:
            raise self._breach("voltage_max_V", voltage_V, "refused")
        if self.limits.voltage_min_V is not None and voltage_V < self.limits.voltage_min_V:
            raise self._breach("voltage_min_V", voltage_V, "refused")

    def _time_left(self, until_time_s: float | None) -> float | None:
        """The segment's time limit (s) within what is left of the test's; refused if nothing is left."""
        if self.limits.test_time_max_h is None:
            return until_time_s
        now_s = self._last.test_time_s if self._last else 0.0
        left = self.limits.test_time_max_h * SECONDS_PER_HOUR - now_s
        if left <= 0:
            raise self._breach("test_time_max_h", now_s / SECONDS_PER_HOUR, "refused", test_time_s=now_s)
        return left if until_time_s is None else min(until_time_s, left)

    def _new_segment(self, **tightened: bool) -> _Segment:
        return _Segment(_counters(self._last) if self._last else 0.0,
                        {reason: END_REASONS[reason] for reason, yes in tightened.items() if yes})

    def _unmeasurable(self, r: CyclerReading) -> str | None:
        """Why reading ``r`` cannot be a measurement of this channel, or None."""
        for what, value, span, units in (("voltage", r.voltage_V, self.range.voltage_range_V, "V"),
                                         ("current", r.current_A, self.range.current_range_A, "A")):
            if span is not None and abs(value) > span * (1 + RANGE_MARGIN):
                return (f"instrument fault, not the cell: {what} {value:.6g} {units} read at test time "
                        f"{r.test_time_s:.0f} s is outside the channel's range ±{span:g} {units}; check the cycler "
                        "channel and its connection")
        return None

    def _breach_in(self, r: CyclerReading) -> tuple[str, float, str] | None:
        """(limit, value, how) of the first limit reading ``r`` is past or the instrument ended the segment on; None."""
        lim, seg = self.limits, self._segment
        passed_Ah, hours = _passed(seg, r) if seg else 0.0, r.test_time_s / SECONDS_PER_HOUR
        if lim.voltage_max_V is not None and r.voltage_V > lim.voltage_max_V + VOLTAGE_MARGIN_V:
            return "voltage_max_V", r.voltage_V, "read"
        if lim.voltage_min_V is not None and r.voltage_V < lim.voltage_min_V - VOLTAGE_MARGIN_V:
            return "voltage_min_V", r.voltage_V, "read"
        if lim.current_max_A is not None and abs(r.current_A) > lim.current_max_A * (1 + MARGIN):
            return "current_max_A", abs(r.current_A), "read"
        if lim.capacity_per_step_Ah is not None and passed_Ah > lim.capacity_per_step_Ah * (1 + MARGIN):
            return "capacity_per_step_Ah", passed_Ah, "read"
        if lim.test_time_max_h is not None and hours >= lim.test_time_max_h:
            return "test_time_max_h", hours, "read"
        held = seg.held.get(r.end_reason or "") if seg is not None and not r.segment_active else None
        if held is not None:
            return held, {"capacity_per_step_Ah": passed_Ah, "test_time_max_h": hours}.get(held, r.voltage_V), "held"
        return None

    def _breach(self, limit: str, value: float, how: str, *, test_time_s: float | None = None) -> SafetyLimitBreach:
        """Rest the channel, then the breach to raise."""
        self._rest_now()
        bound = getattr(self.limits if limit in Limits.model_fields else self.range, limit)
        return SafetyLimitBreach(limit, value, bound, how=how, test_time_s=test_time_s)

    def _rest_now(self) -> None:
        """Rest the channel at once; a failure is logged (the runner's shutdown rests and ends it again)."""
        self._segment = None
        try:
            self._channel.rest()
        except Exception as e:
            log.error("could not rest the channel after a safety check: %s: %s", type(e).__name__, e)


def _counters(r: CyclerReading) -> float:
    return r.charge_capacity_Ah + r.discharge_capacity_Ah


def _passed(seg: _Segment, r: CyclerReading) -> float:
    """|charge| passed since the segment was commanded, Ah (counters that fell were reset by the instrument)."""
    now = _counters(r)
    return now - seg.start_Ah if now >= seg.start_Ah else now


def _lowest(value: float | None, *bounds: float | None) -> Any:
    """The lowest of ``value`` and the bounds that are set (None stays None only if all are)."""
    given = [v for v in (value, *bounds) if v is not None]
    return min(given) if given else None


def _highest(value: float, bound: float | None) -> float:
    return value if bound is None else max(value, bound)
