"""The SQM-160 emulator's physics: the source that grows the film and the quartz crystal it grows on.

- The source grows the film at the crystal at ``rate_A_s`` (Å/s of the active film), with a linear drift and an
  Ornstein-Uhlenbeck fluctuation drawn on a 1 s grid and interpolated linearly, so how much lands between two times
  does not depend on how the clock was stepped. The substrate gets ``geometry_tooling_pct`` / 100 of what the
  crystal gets (what tooling calibration finds).
- The crystal's resonance follows the Z-match (Lu-Lewis) equation of the film growing on it; crystal life =
  100 (f − f_min)/(f_q − f_min).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

N_AT_HZ_A = 1.668e13  # frequency constant of AT-cut quartz, Hz·Å (Lu & Lewis, J. Appl. Phys. 43, 4385 (1972))
RHO_QUARTZ_G_CM3 = 2.648
# A new 6 MHz crystal has 100 % life and 5 MHz leaves 0 %: the SQC-310 manual's PA example reads 5,950,000 Hz as
# 95.00 % life (research/instruments.md §6.2), which these two frequencies give.
F_NEW_HZ, F_DEAD_HZ = 6.0e6, 5.0e6
GRID_S = 1.0  # the source's fluctuation is drawn once per second
HORIZON_S = 86400.0  # events further ahead are foreseen when they come closer


@dataclass(frozen=True)
class MonitorSetup:
    """What a simulated deposition bench holds: the source, the crystal and how the shutter is worked."""

    seed: int = 0
    rate_A_s: float = 1.0  # the source's rate at the crystal; 1 Å/s as Sandoval et al. evaporate Ag and Au
    drift_per_h: float = -0.02  # sim value: a source slowly losing rate (target erosion)
    fluctuation: float = 0.02  # sim value: relative standard deviation of the rate
    fluctuation_time_s: float = 30.0  # sim value: how long a fluctuation lasts
    crystal_life_pct: float = 100.0  # life left on the installed crystal
    fail_at_s: float | None = None  # bench time at which the crystal fails (None: only when its life runs out)
    shutter_wired: bool = True  # False: the relay is not connected; the operator works the shutter by hand
    geometry_tooling_pct: float = 100.0  # substrate thickness / crystal thickness of the chamber
    sensors: int = 2

    def __post_init__(self) -> None:
        if not (
            self.rate_A_s > 0
            and 0 < self.crystal_life_pct <= 100
            and 1 <= self.sensors <= 6
            and self.geometry_tooling_pct > 0
            and self.fluctuation >= 0
            and self.fluctuation_time_s > 0
        ):
            raise ValueError(f"not a usable monitor setup: {self}")


def zmatch_thickness_A(f_Hz: float, density_g_cm3: float, z_ratio: float) -> float:
    """Film thickness on a crystal resonating at ``f_Hz``, by the Z-match equation (Lu & Lewis 1972)."""
    phase = math.pi * (F_NEW_HZ - f_Hz) / F_NEW_HZ
    return (
        N_AT_HZ_A * RHO_QUARTZ_G_CM3 / (math.pi * density_g_cm3 * f_Hz * z_ratio) * math.atan(z_ratio * math.tan(phase))
    )


def zmatch_frequency_Hz(thickness_A: float, density_g_cm3: float, z_ratio: float) -> float:
    """The frequency at which :func:`zmatch_thickness_A` gives ``thickness_A`` (bisection; it falls with f)."""
    low, high = F_NEW_HZ / 2, F_NEW_HZ
    for _ in range(80):
        mid = 0.5 * (low + high)
        if zmatch_thickness_A(mid, density_g_cm3, z_ratio) > thickness_A:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


class Source:
    """The film's growth rate at the crystal (Å/s) against bench time: piecewise linear between 1 s knots."""

    def __init__(self, setup: MonitorSetup) -> None:
        self.setup = setup
        self._rng = np.random.default_rng(setup.seed)
        self._decay = math.exp(-GRID_S / setup.fluctuation_time_s)
        self._x = 0.0
        self._rates: list[float] = []
        self._cumulative: list[float] = [0.0]  # deposited from t = 0 to each knot, Å
        self._extend(1)

    def rate_at(self, t: float) -> float:
        k, frac = self._locate(t)
        return self._rates[k] + frac * (self._rates[k + 1] - self._rates[k])

    def deposited_A(self, t0: float, t1: float) -> float:
        """Film grown at the crystal between ``t0`` and ``t1`` with the shutter open."""
        return self._cumulative_at(t1) - self._cumulative_at(t0)

    def time_to_deposit(self, t0: float, amount_A: float) -> float:
        """The bench time at which ``amount_A`` more has grown since ``t0``; inf if not within ``HORIZON_S``."""
        target = self._cumulative_at(t0) + amount_A
        last_knot = int((t0 + HORIZON_S) // GRID_S)
        while self._cumulative[-1] < target:
            if len(self._rates) > last_knot:
                return math.inf
            self._extend(len(self._rates) + 64)
        k = bisect.bisect_left(self._cumulative, target) - 1
        r0, r1 = self._rates[k], self._rates[k + 1]
        need, slope = target - self._cumulative[k], (r1 - r0) / GRID_S
        # r0 τ + slope τ²/2 = need, the root in [0, GRID_S]
        tau = need / r0 if abs(slope) < 1e-15 else (-r0 + math.sqrt(max(r0 * r0 + 2 * slope * need, 0.0))) / slope
        return k * GRID_S + min(max(tau, 0.0), GRID_S)

    def _cumulative_at(self, t: float) -> float:
        k, frac = self._locate(t)
        r0, r1 = self._rates[k], self._rates[k + 1]
        tau = frac * GRID_S
        return self._cumulative[k] + r0 * tau + (r1 - r0) * tau * tau / (2 * GRID_S)

    def _locate(self, t: float) -> tuple[int, float]:
        k = max(int(t // GRID_S), 0)
        self._extend(k + 2)
        return k, t / GRID_S - k

    def _extend(self, knots: int) -> None:
        s = self.setup
        while len(self._rates) < knots + 1:
            t = len(self._rates) * GRID_S
            rate = s.rate_A_s * max(1.0 + s.drift_per_h * t / 3600.0, 0.0) * max(1.0 + self._x, 0.0)
            if self._rates:
                self._cumulative.append(self._cumulative[-1] + 0.5 * (self._rates[-1] + rate) * GRID_S)
            self._rates.append(rate)
            kick = s.fluctuation * math.sqrt(1 - self._decay**2) * self._rng.standard_normal()
            self._x = self._decay * self._x + kick
