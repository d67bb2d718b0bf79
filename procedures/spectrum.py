"""Software-stepped impedance spectra: the sweep logic every EIS procedure shares.

Each point is triggered, the clock is let run for the time the analyzer needs (so a simulated bench's
virtual time advances exactly that far), and the result is read; the driver refuses stale points.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from labctl.roles import Clock, ImpedanceAnalyzer

Point = tuple[float, complex]


def log_frequencies(start_Hz: float, stop_Hz: float, points_per_decade: int) -> list[float]:
    """Log-spaced frequencies from ``start_Hz`` to ``stop_Hz`` inclusive (either direction)."""
    if start_Hz <= 0 or stop_Hz <= 0 or start_Hz == stop_Hz:
        raise ValueError(f"frequencies must be > 0 and differ: start {start_Hz:g} Hz, stop {stop_Hz:g} Hz")
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, not {points_per_decade}")
    n = round(points_per_decade * abs(math.log10(stop_Hz / start_Hz))) + 1
    return [float(f) for f in np.logspace(math.log10(start_Hz), math.log10(stop_Hz), max(n, 2))]


def measure_spectrum(analyzer: ImpedanceAnalyzer, clock: Clock, frequencies: list[float],
                     should_stop: Callable[[], bool] = lambda: False,
                     on_point: Callable[[int, int], None] = lambda done, total: None) -> list[Point]:
    """Measure ``frequencies`` one by one, telling ``on_point`` how many are done; stops early (returning
    what was measured) when asked to."""
    points: list[Point] = []
    for f in frequencies:
        if should_stop():
            break
        analyzer.trigger(f)
        clock.wait(analyzer.point_duration_s(f), stop_at_event=False)
        points.append((f, analyzer.read(f)))
        on_point(len(points), len(frequencies))
    return points
