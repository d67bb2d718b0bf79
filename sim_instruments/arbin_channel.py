"""One emulated Arbin channel: runs a schedule on a virtual cell as bench time passes.

While a test runs, the channel is a participant of the bench's
:class:`~labctl.sim_instruments.clock.VirtualClock` (an idle channel leaves the clock alone and lets its cell
rest, integrated when it is next looked at). Limits are
checked on the cell's noise-free voltage after every substep and at once whenever a meta-variable changes
(transitions that take no time), and the clock lands exactly on time and charge limits because the channel
tells it how far away they are. Readings report the cell's measured voltage (with noise).

A constant-voltage step sets the current from the cell's ``current_at(voltage)`` on entry, whenever a
meta-variable changes and after every substep, clamped to the step's |I| limit and to the channel's range (a
clamped channel passes the clamp current and the voltage sags: constant current at the clamp). Each substep
passes the current set at its start, so the capacity counters and the cell see the same charge.

The schedule's global safety (MITS's Global page, numbers in the schedule file) is the channel's: |V| beyond
``SAFETY_VOLTAGE_V``, or a current set-point beyond ``CURRENT_SAFETY`` of the channel's range, makes the channel
Unsafe at once with the current off (a 10 A request on a 5 A channel passes nothing).

Callers hold the clock's lock around every method: the clock does so while it integrates, and the CTI server
does so while it handles a command.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

from labctl.drivers.arbin.messages import META_CODES, ChannelStatus
from labctl.sim_instruments.arbin_schedules import (
    CURRENT_LOW,
    END,
    MV_EQUALS,
    STEP_CHARGE,
    STEP_TIME,
    VOLTAGE_HIGH,
    VOLTAGE_LOW,
    Limit,
    Schedule,
    Step,
)  # fmt: skip
from labctl.sim_instruments.cell import ChannelCell, HoldableCell
from labctl.sim_instruments.clock import VirtualClock

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

SAFETY_VOLTAGE_V = 5.0  # schedule-level safety: |V| beyond this makes the channel Unsafe
CURRENT_RANGE_A = 5.0  # the channel's full-scale current (its largest range, a common top range of MITS Pro), A
VOLTAGE_RANGE_V = 10.0  # its full-scale voltage, ±V (the 10 V class of sim_instruments/measurement.py's noise)
CURRENT_SAFETY = 1.05  # schedule-level current safety, of the range (MITS's default safety scope is 105 %)
TIME_TOLERANCE_S = 1e-9  # a time limit counts as reached this close to it (rounding of summed substeps)
CHARGE_TOLERANCE = 1e-9  # relative, likewise for charge limits
MAX_ZERO_TIME_TRANSITIONS = 64  # a schedule that keeps jumping without time passing is stopped there
INF = math.inf


class ArbinChannel:
    """Channel ``number`` (1-based; the wire index is ``number - 1``) with ``cell`` connected, or None,
    living on ``clock``, passing at most ``current_range_A``."""

    def __init__(self, number: int, cell: ChannelCell | None, clock: VirtualClock, *,
                 current_range_A: float = CURRENT_RANGE_A) -> None:
        self.number = number
        self.current_range_A = current_range_A
        self.cell = cell
        self._clock = clock
        self.schedule_name = ""
        self.schedule: Schedule | None = None
        self.barcode = ""
        self.test_name = ""
        self.mvs: dict[int, float] = {}  # meta code -> value
        self.status = ChannelStatus.IDLE
        self.running = False
        self.step_number = 0
        self.cycle = 0
        self.exit_condition = ""
        self.test_time_s = 0.0
        self.step_time_s = 0.0
        self.current_A = 0.0
        self.step_charge_Ah = 0.0  # signed
        self.charge_Ah = self.discharge_Ah = 0.0
        self.charge_Wh = self.discharge_Wh = 0.0
        self.dv_dt = 0.0
        self._step: Step | None = None
        self._hold: tuple[Callable[[float], float], float, float] | None = None  # current_at, V, clamp A
        self._voltage = 0.0  # noise-free, at the last evaluation
        self._idle_since = clock.now  # the cell has rested at open circuit since (integrated lazily)

    @property
    def connected(self) -> bool:
        return self.cell is not None

    # --- CTI operations ---

    def assign(self, name: str, schedule: Schedule, barcode: str, user_variables: Sequence[float]) -> None:
        """Assign a schedule; the assignment's user variables set MV_UD1.. (the rest start at 0)."""
        self.schedule_name, self.schedule, self.barcode = name, schedule, barcode
        self.mvs = {META_CODES[k]: float(v) for k, v in enumerate(user_variables, start=1)}

    def start(self, test_name: str) -> None:
        """Start the assigned schedule at step 1, with test time and capacities at 0."""
        assert self.cell is not None and self.schedule is not None
        self._settle()
        self.test_name = test_name
        self.running = True
        self.test_time_s = 0.0
        self.charge_Ah = self.discharge_Ah = self.charge_Wh = self.discharge_Wh = 0.0
        self.dv_dt = 0.0
        self.cycle = 1
        self.exit_condition = ""
        self._clock.register(self)
        self._enter(self.schedule.first_step)
        self._evaluate()

    def stop(self) -> None:
        """Stop the test (if any): current off, status Idle."""
        if self.running:
            self._go_idle(ChannelStatus.IDLE)
        self.status = ChannelStatus.IDLE

    def detach(self) -> None:
        """Leave the clock for good (the emulator is closing)."""
        self._clock.unregister(self)

    def set_mv(self, meta_code: int, value: float) -> None:
        """Set a meta-variable of the running test; the present step reacts at once."""
        self.mvs[meta_code] = value
        if self.running:
            self._apply_step_current()
            self._evaluate()

    def record(self) -> dict[str, object]:
        """The channel's fields of a channel info record (``messages.CHANNEL_RECORD`` names), SI units."""
        self._settle()
        v = self.cell.measured_voltage(self.current_A) if self.cell is not None else 0.0
        return {
            "channel": self.number - 1,
            "status": int(self.status),
            "comm_failure": 0 if self.cell is not None else 1,
            "schedule": self.schedule_name,
            "test_name": self.test_name,
            "exit_condition": self.exit_condition,
            "step_and_cycle": f"Step {self.step_number} Cycle {self.cycle}" if self.step_number else "",
            "barcode": self.barcode,
            "test_time_s": self.test_time_s,
            "step_time_s": self.step_time_s,
            "voltage_v": v,
            "current_a": self.current_A,
            "power_w": v * self.current_A,
            "charge_capacity_ah": self.charge_Ah,
            "discharge_capacity_ah": self.discharge_Ah,
            "charge_energy_wh": self.charge_Wh,
            "discharge_energy_wh": self.discharge_Wh,
            "dv_dt_v_per_s": self.dv_dt,
        }

    # --- clock participant ---

    def max_step(self) -> float:
        """Seconds until the present step's time or charge limit, at the present current; inf if none."""
        step = self._step
        if not self.running or step is None or not step.timed:
            return INF
        best = INF
        for limit in step.timed:
            threshold = limit.value if limit.value_mv is None else self.mvs.get(limit.value_mv, 0.0)
            if limit.zero_means_none and threshold <= 0:
                continue
            if limit.kind == STEP_TIME:
                left = threshold - self.step_time_s
            elif self.current_A:
                left = (threshold - abs(self.step_charge_Ah)) * 3600.0 / abs(self.current_A)
            else:
                continue
            if left < best:
                best = left
        return best if best > 0.0 else 0.0

    def advance(self, dt: float) -> bool:
        """Integrate ``dt`` seconds; True if a step ended (or the channel became Unsafe)."""
        if not self.running:
            return False
        cell, current = self.cell, self.current_A
        assert cell is not None
        cell.advance(current, dt)
        self.test_time_s += dt
        self.step_time_s += dt
        if self._hold is None:
            v = cell.voltage(current)
        else:
            self._set_current(self._held_current())
            v = cell.voltage(self.current_A)
        if current:
            dq = current * dt / 3600.0
            self.step_charge_Ah += dq
            if current > 0:
                self.charge_Ah += dq
                self.charge_Wh += dq * v
            else:
                self.discharge_Ah -= dq
                self.discharge_Wh -= dq * v
        if dt > 0:
            self.dv_dt = (v - self._voltage) / dt
        self._voltage = v
        return self._check(v)

    # --- the schedule ---

    def _evaluate(self) -> bool:
        if not self.running:  # entering a constant-voltage step on a cell that cannot hold a voltage stopped it
            return True
        assert self.cell is not None
        self._voltage = self.cell.voltage(self.current_A)
        return self._check(self._voltage)

    def _check(self, v: float) -> bool:
        """Apply the first limit reached, repeatedly (zero-time transitions); True if the step changed."""
        changed = False
        for _ in range(MAX_ZERO_TIME_TRANSITIONS):
            if not -SAFETY_VOLTAGE_V <= v <= SAFETY_VOLTAGE_V:
                self._unsafe("|Voltage|>SafetyLimit", f"{v:.3f} V is beyond the ±{SAFETY_VOLTAGE_V:.1f} V safety limit")
                return True
            limit = self._reached(v)
            if limit is None:
                return changed
            changed = True
            self.exit_condition = limit.exit_condition
            self._enter(limit.goto)
            if not self.running:
                return True
            assert self.cell is not None
            v = self._voltage = self.cell.voltage(self.current_A)
        log.warning("channel %d: schedule %r keeps changing steps without time passing; holding step %d",
                    self.number, self.schedule_name, self.step_number)
        return changed

    def _reached(self, v: float) -> Limit | None:
        assert self._step is not None
        mvs = self.mvs
        for limit in self._step.limits:
            threshold = limit.value if limit.value_mv is None else mvs.get(limit.value_mv, 0.0)
            kind = limit.kind
            if kind == MV_EQUALS:
                if mvs.get(limit.mv, 0.0) == threshold:  # type: ignore[arg-type]
                    return limit
                continue
            if limit.zero_means_none and threshold <= 0:
                continue
            if kind == VOLTAGE_HIGH:
                reached = v >= threshold
            elif kind == VOLTAGE_LOW:
                reached = v <= threshold
            elif kind == STEP_TIME:
                reached = self.step_time_s >= threshold - TIME_TOLERANCE_S
            elif kind == STEP_CHARGE:
                reached = abs(self.step_charge_Ah) >= threshold * (1.0 - CHARGE_TOLERANCE)
            elif kind == CURRENT_LOW:
                reached = abs(self.current_A) <= threshold
            else:
                raise ValueError(f"schedule {self.schedule_name!r}: unknown limit kind {kind!r}")
            if reached:
                return limit
        return None

    def _enter(self, step_number: int) -> None:
        if step_number == END:
            self._go_idle(ChannelStatus.FINISHED)
            return
        assert self.schedule is not None
        self.step_number = step_number
        self._step = self.schedule.steps[step_number]
        self.step_time_s = 0.0
        self.step_charge_Ah = 0.0
        self._apply_step_current()

    def _apply_step_current(self) -> None:
        step = self._step
        assert step is not None
        self._hold = None
        if step.voltage_mv is not None:
            self._begin_hold(step)
            return
        current = step.current_A if step.current_mv is None else self.mvs.get(step.current_mv, 0.0)
        if abs(current) > CURRENT_SAFETY * self.current_range_A:
            self._unsafe("|Current|>SafetyLimit", f"a set-point of {current:g} A is beyond the current safety "
                         f"({CURRENT_SAFETY:.0%} of the {self.current_range_A:g} A range)")
            return
        self._set_current(current)

    def _begin_hold(self, step: Step) -> None:
        """Hold the step's voltage: set the current it draws now (clamped), or go Unsafe if the cell cannot."""
        assert self.cell is not None and step.voltage_mv is not None
        if not isinstance(self.cell, HoldableCell):
            self._go_idle(ChannelStatus.UNSAFE)
            self.exit_condition = "CV:CellHasNoCurrentAt"
            log.error("channel %d: step %d %r holds a constant voltage, but the simulated cell (%s) has no "
                      "current_at(voltage_V), so no current can be found for it; channel Unsafe, current off",
                      self.number, self.step_number, step.name, type(self.cell).__name__)
            return
        clamp = self.current_range_A if step.clamp_mv is None else min(abs(self.mvs.get(step.clamp_mv, 0.0)),
                                                                        self.current_range_A)
        self._hold = (self.cell.current_at, self.mvs.get(step.voltage_mv, 0.0), clamp)
        self._set_current(self._held_current())

    def _held_current(self) -> float:
        """The current that holds the step's voltage now, clamped to +-clamp."""
        assert self._hold is not None
        current_at, setpoint_V, clamp_A = self._hold
        held = current_at(setpoint_V)
        return clamp_A if held > clamp_A else -clamp_A if held < -clamp_A else held

    def _set_current(self, current: float) -> None:
        self.current_A = current
        if current > 0:
            self.status = ChannelStatus.CHARGE
        elif current < 0:
            self.status = ChannelStatus.DISCHARGE
        else:
            self.status = ChannelStatus.REST

    def _unsafe(self, exit_condition: str, why: str) -> None:
        self._go_idle(ChannelStatus.UNSAFE)
        self.exit_condition = exit_condition
        log.warning("channel %d: %s; channel Unsafe, current off", self.number, why)

    def _go_idle(self, status: ChannelStatus) -> None:
        self.running = False
        self.current_A = 0.0
        self._hold = None
        self.status = status
        self._idle_since = self._clock.now  # during an advance: the end of the substep just integrated
        self._clock.unregister(self)

    def _settle(self) -> None:
        """Integrate the open-circuit time of an idle cell up to now, in the clock's substeps."""
        if self.running:
            return
        now = self._clock.now
        pending, self._idle_since = now - self._idle_since, now
        if self.cell is None:
            return
        substep = self._clock.max_substep_s
        while pending > TIME_TOLERANCE_S:
            chunk = min(pending, substep)
            self.cell.advance(0.0, chunk)
            pending -= chunk
