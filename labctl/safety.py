"""Safety limits: what a cell may see, whoever set them, and the breach that ends a run.

A bench file's top-level ``[limits]`` hold on every channel of the bench, ``[roles.cycler.limits]`` on its cycler
channel, and a run's own (``--limit NAME=VALUE``, a run file's ``[limits]``) in that run; a run is held to the
tightest of them (:func:`tightest`). Apart from these, a channel cannot pass more than its range (``ChannelRange``,
from the driver's identity). ``labctl.engine.supervisor`` enforces both on every set-point and every reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

UNITS = {"voltage_max_V": "V", "voltage_min_V": "V", "current_max_A": "A", "capacity_per_step_Ah": "Ah",
         "test_time_max_h": "h", "current_range_A": "A", "voltage_range_V": "V"}  # fmt: skip
LABELS = {
    "voltage_max_V": "upper voltage limit", "voltage_min_V": "lower voltage limit", "current_max_A": "|I| limit",
    "capacity_per_step_Ah": "|charge| limit of a segment", "test_time_max_h": "test time limit",
    "current_range_A": "the channel's current range", "voltage_range_V": "the channel's voltage range",
}  # fmt: skip


class LimitError(ValueError):
    """Limits that cannot be used; ``limit`` names the one to fix, the message says why."""

    def __init__(self, limit: str, detail: str) -> None:
        self.limit = limit
        super().__init__(f"{limit}: {detail}")


class _Strict(BaseModel):
    # strict: a TOML true is no number; no inf or NaN
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class Limits(_Strict):
    """Safety limits of a run, each optional: the voltage window (V), |I| (A), the |charge| one segment may pass (Ah)
    and the test's total time (h)."""

    voltage_max_V: float | None = None
    voltage_min_V: float | None = None
    current_max_A: float | None = Field(default=None, gt=0)
    capacity_per_step_Ah: float | None = Field(default=None, gt=0)
    test_time_max_h: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _window(self) -> Limits:
        high, low = self.voltage_max_V, self.voltage_min_V
        if high is not None and low is not None and not high > low:
            raise ValueError(f"voltage_min_V = {low:g} V must be below voltage_max_V = {high:g} V")
        return self

    def given(self) -> dict[str, float]:
        """The limits that are set, by name."""
        return self.model_dump(exclude_none=True)

    def describe(self) -> str:
        """``voltage_max_V 4.3 V, current_max_A 0.01 A``, or ``none``."""
        return ", ".join(f"{name} {value:g} {UNITS[name]}" for name, value in self.given().items()) or "none"


class ChannelRange(_Strict):
    """What a cycler channel can pass and measure: full-scale |I| (A) and |V| (V); None where the bench does not say."""

    current_range_A: float | None = Field(default=None, gt=0)
    voltage_range_V: float | None = Field(default=None, gt=0)

    @classmethod
    def of(cls, identity: Mapping[str, str]) -> ChannelRange:
        """The range a driver reports in its identity (text, as identities are)."""
        return cls(**{name: float(identity[name]) for name in cls.model_fields if name in identity})


def limits_of(values: Mapping[str, Any]) -> Limits:
    """Limits from names and numbers; LimitError naming an unknown or bad one."""
    for name in values:
        if name not in Limits.model_fields:
            raise LimitError(name, f"not a limit; limits are {', '.join(Limits.model_fields)}")
    try:
        return Limits.model_validate(dict(values))
    except ValidationError as e:
        problem = e.errors()[0]
        name = str(problem["loc"][0]) if problem["loc"] else "voltage_min_V"
        detail = problem["msg"].removeprefix("Value error, ")
        raise LimitError(name, detail if not problem["loc"] else f"{problem['input']!r}: {detail.lower()}") from None


def parse_limit_texts(items: Iterable[str]) -> dict[str, float]:
    """``NAME=VALUE`` texts (``--limit`` options) as numbers by name; later ones win. LimitError naming a bad one."""
    values = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise LimitError(item, "write it as NAME=VALUE, e.g. --limit voltage_max_V=4.3")
        try:
            values[name] = float(text)
        except ValueError:
            raise LimitError(name, f"{text!r} is not a number (in {UNITS.get(name, 'its units')})") from None
    return values


def tightest(*sets: Limits) -> Limits:
    """One set of limits that keeps every one of ``sets``: the lowest maxima, the highest minimum. LimitError if
    they leave no voltage window."""
    merged: dict[str, float] = {}
    for name in Limits.model_fields:
        values = [v for limits in sets if (v := getattr(limits, name)) is not None]
        if values:
            merged[name] = max(values) if name == "voltage_min_V" else min(values)
    return limits_of(merged)


class SafetyLimitBreach(Exception):
    """A safety limit or the channel's range reached, or asked beyond: the supervisor rested the channel. ``how`` is
    "refused" (asked beyond it: nothing was sent), "read" (a reading past it) or "held" (the instrument ended the
    segment at it); ``value`` is in the limit's units."""

    def __init__(self, limit: str, value: float, limit_value: float, *, how: str, test_time_s: float | None) -> None:
        self.limit, self.value, self.limit_value, self.how, self.test_time_s = limit, value, limit_value, how, test_time_s
        units = UNITS[limit]
        at = f" at test time {test_time_s:.0f} s" if test_time_s is not None else ""
        what = {"refused": f"refused {value:.6g} {units} before sending it",
                "read": f"read {value:.6g} {units}{at}",
                "held": f"the cycler ended the segment at it{at} ({value:.6g} {units} read after)"}[how]  # fmt: skip
        super().__init__(f"{limit} = {limit_value:g} {units} ({LABELS[limit]}): {what}; channel at rest")

    def event(self) -> dict[str, Any]:
        """The ``safety_limit`` event's fields."""
        return {"limit": self.limit, "value": self.value, "limit_value": self.limit_value, "units": UNITS[self.limit],
                "how": self.how, "test_time_s": self.test_time_s, "message": str(self)}
