"""The one boundary between what users think in (mA/cm², mAh/cm², mm) and what instruments use (A, Ah, s)."""

from __future__ import annotations

import math

SECONDS_PER_HOUR = 3600.0


def area_from_diameter_cm2(diameter_mm: float) -> float:
    """Electrode area in cm² from its diameter in mm (12 mm → 1.131 cm², 10 mm → 0.785 cm²)."""
    return math.pi * (diameter_mm / 20.0) ** 2


def current_A(density_mA_cm2: float, area_cm2: float) -> float:
    return density_mA_cm2 * area_cm2 / 1000.0


def density_mA_cm2(current_A: float, area_cm2: float) -> float:
    return current_A * 1000.0 / area_cm2


def charge_Ah(areal_mAh_cm2: float, area_cm2: float) -> float:
    return areal_mAh_cm2 * area_cm2 / 1000.0


def areal_mAh_cm2(charge_Ah: float, area_cm2: float) -> float:
    return charge_Ah * 1000.0 / area_cm2


def percent_done(done: float, total: float) -> float:
    """Progress in %, from work done and the planned total in the same unit; never above 100 (runs overrun plans)."""
    return min(100.0, 100.0 * done / total)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 cycle", "3 cycles"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
