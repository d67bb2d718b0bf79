"""Schedules on the emulated Arbin PC: the universal schedule labctl drives through meta-variables, and
simple pre-made schedules for supervisory use.

A schedule is a table of steps, as in MITS Pro: each step sets a current (a fixed value or a meta-variable,
read live), or holds a voltage, and lists limits; the first limit reached ends the step and says where to go
next.

The universal schedule (``labctl_universal.sdx``), the contract between labctl's Arbin adapter and this
emulator; MV_UD1 is the mode (0 idle, 1 constant current, 2 constant voltage, 9 end), MV_UD2 the current in A
(in constant voltage: the |I| clamp), MV_UD3/4 the upper and lower voltage limits in V, MV_UD5 the step time
limit in s, MV_UD6 the |charge| limit in Ah, MV_UD7 the voltage setpoint in V and MV_UD8 the |current| below
which a hold ends, in A (0 = none for MV_UD5, 6 and 8)::

    1 Idle (rest)              MV_UD1 == 1 -> 2;  MV_UD1 == 2 -> 3;  MV_UD1 == 9 -> end
    2 Constant current MV_UD2  step time >= MV_UD5 -> 4;  |charge| >= MV_UD6 -> 4;
                               V >= MV_UD3 -> 4;  V <= MV_UD4 -> 4;  MV_UD1 == 0 -> 1
    3 Constant voltage MV_UD7, |I| <= MV_UD2
                               step time >= MV_UD5 -> 4;  |I| <= MV_UD8 -> 4;  MV_UD1 == 0 -> 1
    4 Segment done (rest)      MV_UD1 == 0 -> 1;  MV_UD1 == 9 -> end
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from labctl.drivers.arbin.messages import META_CODES

END = 0  # a limit's goto: the schedule ends and the channel reports FINISHED

# limit kinds
STEP_TIME = "step_time"  # step time (s) >= threshold
STEP_CHARGE = "step_charge"  # |charge passed in the step| (Ah) >= threshold
VOLTAGE_HIGH = "voltage_high"  # noise-free cell voltage (V) >= threshold
VOLTAGE_LOW = "voltage_low"  # noise-free cell voltage (V) <= threshold
CURRENT_LOW = "current_low"  # |current| (A) <= threshold
MV_EQUALS = "mv_equals"  # meta-variable ``mv`` == threshold
TIMED = (STEP_TIME, STEP_CHARGE)  # limits whose arrival time the emulator can foresee


@dataclass(frozen=True)
class Limit:
    """One end condition of a step. The threshold is ``value``, or meta-variable ``value_mv`` read live."""

    kind: str
    goto: int
    exit_condition: str  # written to the channel record when this limit ends the step
    value: float = 0.0
    value_mv: int | None = None
    mv: int | None = None  # the meta-variable compared, for MV_EQUALS
    zero_means_none: bool = False  # "(if > 0)": a threshold <= 0 disables the limit


@dataclass(frozen=True)
class Step:
    """One schedule step and its limits: a current in A (fixed, or meta-variable ``current_mv`` read live), or,
    with ``voltage_mv`` set, the voltage in meta-variable ``voltage_mv`` (V) with |I| clamped to |``clamp_mv``| (A)."""

    name: str
    current_A: float = 0.0
    current_mv: int | None = None
    limits: tuple[Limit, ...] = ()
    voltage_mv: int | None = None
    clamp_mv: int | None = None
    timed: tuple[Limit, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "timed", tuple(limit for limit in self.limits if limit.kind in TIMED))


@dataclass(frozen=True)
class Schedule:
    steps: Mapping[int, Step]
    first_step: int = 1


UNIVERSAL_NAME = "labctl_universal.sdx"
_MODE, _CURRENT, _V_HIGH, _V_LOW, _TIME, _CHARGE, _VOLTAGE, _CURRENT_LOW = (META_CODES[k] for k in range(1, 9))


def _mode_is(value: float, goto: int) -> Limit:
    return Limit(MV_EQUALS, goto, "MV_UD1", value=value, mv=_MODE)


UNIVERSAL = Schedule({
    1: Step("Idle", limits=(_mode_is(1, 2), _mode_is(2, 3), _mode_is(9, END))),
    2: Step("Constant current", current_mv=_CURRENT, limits=(
        Limit(STEP_TIME, 4, "StepTime>=Limit", value_mv=_TIME, zero_means_none=True),
        Limit(STEP_CHARGE, 4, "Charge>=Limit", value_mv=_CHARGE, zero_means_none=True),
        Limit(VOLTAGE_HIGH, 4, "Voltage>=Limit", value_mv=_V_HIGH),
        Limit(VOLTAGE_LOW, 4, "Voltage<=Limit", value_mv=_V_LOW),
        _mode_is(0, 1),
    )),
    3: Step("Constant voltage", voltage_mv=_VOLTAGE, clamp_mv=_CURRENT, limits=(
        Limit(STEP_TIME, 4, "StepTime>=Limit", value_mv=_TIME, zero_means_none=True),
        Limit(CURRENT_LOW, 4, "Current<=Limit", value_mv=_CURRENT_LOW, zero_means_none=True),
        _mode_is(0, 1),
    )),
    4: Step("Segment done", limits=(_mode_is(0, 1), _mode_is(9, END))),
})  # fmt: skip


@dataclass(frozen=True)
class PremadeSchedule:
    """A schedule file that runs without meta-variables: rest for ``rest_s`` seconds, then (if
    ``current_s`` > 0) ``current_A`` amperes for ``current_s`` seconds or until the voltage leaves
    [``min_voltage_V``, ``max_voltage_V``], then the test ends."""

    rest_s: float = 60.0
    current_A: float = 0.0
    current_s: float = 0.0
    max_voltage_V: float = 5.0
    min_voltage_V: float = -5.0

    def schedule(self) -> Schedule:
        after_rest = 2 if self.current_s > 0 else END
        steps = {1: Step("Rest", limits=(Limit(STEP_TIME, after_rest, "StepTime>=Limit", value=self.rest_s),))}
        if self.current_s > 0:
            steps[2] = Step("Constant current", current_A=self.current_A, limits=(
                Limit(STEP_TIME, END, "StepTime>=Limit", value=self.current_s),
                Limit(VOLTAGE_HIGH, END, "Voltage>=Limit", value=self.max_voltage_V),
                Limit(VOLTAGE_LOW, END, "Voltage<=Limit", value=self.min_voltage_V),
            ))  # fmt: skip
        return Schedule(steps)


DEFAULT_CATALOGUE: Mapping[str, PremadeSchedule] = {
    "Rest.sdx": PremadeSchedule(rest_s=3600.0),
    "Rest_CC_1mA_1h.sdx": PremadeSchedule(
        rest_s=60.0, current_A=1e-3, current_s=3600.0, max_voltage_V=1.0, min_voltage_V=-1.0
    ),
}


def find_schedule(name: str, catalogue: Mapping[str, PremadeSchedule]) -> Schedule | None:
    """The schedule a file name stands for, or None. Names match without regard to case, as on Windows."""
    key = name.strip().casefold()
    if key == UNIVERSAL_NAME.casefold():
        return UNIVERSAL
    for file_name, premade in catalogue.items():
        if file_name.casefold() == key:
            return premade.schedule()
    return None
