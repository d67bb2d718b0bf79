"""Input checks and rounding the analyzers share: one place for what a bad setting says and how results are rounded."""

from __future__ import annotations

import math
from typing import Any


class SettingError(ValueError):
    """A bad analyzer setting; ``setting`` names it, so a caller (the CLI, a form) can show it under its own label."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


def positive(name: str, value: Any, hint: str, *, allow_zero: bool = False) -> None:
    """Raise :class:`SettingError` naming ``name`` unless ``value`` is a finite number above 0 (or 0, if allowed)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise SettingError(name, f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, "
                                 f"got {value!r}; give {hint}")


def sig(x: float, digits: int) -> float:
    """``x`` to ``digits`` significant digits (what the data carry, the same live and after a CSV round trip)."""
    return float(f"{x:.{digits}g}")


def sig_or_none(x: float | None, digits: int) -> float | None:
    """:func:`sig`, passing None through (a quantity the data did not give)."""
    return None if x is None else sig(x, digits)
