"""Impedance spectra: the sweep logic every EIS procedure shares, on any analyzer of the impedance role.

The analyzer measures the frequencies its own way (a 1260 point by point, an SP-200 in one PEIS technique) and
hands each point over as it comes; the driver refuses stale points.

The analyzer's result carries no checksum, so a whole sweep is then checked point by point against its
log-frequency neighbours (:mod:`labctl.analysis.spectrum_points`). Each suspect is measured once more, at the end
of the sweep: the re-read is kept when it agrees with the neighbours (the first read was wrong: ``replaced``); the
first read is kept when both reads agree with each other (a real feature: ``confirmed``); otherwise the re-read is
kept and the point flagged (``flagged``): it is stored, never dropped, but no fit should be presented as clean
without saying so. Every re-read is reported to ``on_reread``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from labctl.analysis.spectrum_points import check_points
from labctl.roles import Clock, ImpedanceAnalyzer

Point = tuple[float, complex]


@dataclass(frozen=True)
class Reread:
    """A suspect point measured again: both reads, the one kept and why."""

    frequency_Hz: float
    first: complex
    second: complex
    verdict: str  # "replaced", "confirmed" or "flagged"

    @property
    def kept(self) -> complex:
        return self.first if self.verdict == "confirmed" else self.second

    def event(self) -> dict:
        """The ``point_remeasured`` event of this re-read."""
        why = {"replaced": "the re-read agrees with the neighbours and replaces the first read",
               "confirmed": "both reads agree: a real feature of the spectrum, the first read is kept",
               "flagged": "the reads disagree with each other and with the neighbours: the re-read is kept, flagged"}
        return {"kind": "point_remeasured", "frequency_Hz": self.frequency_Hz, "verdict": self.verdict,
                "first_ohm": [self.first.real, self.first.imag], "second_ohm": [self.second.real, self.second.imag],
                "message": f"{self.frequency_Hz:.6g} Hz disagreed with its neighbours; {why[self.verdict]}"}


@dataclass
class Sweep:
    """A measured spectrum: its points (in sweep order, re-reads applied), whether all were measured, the re-reads."""

    points: list[Point]
    complete: bool
    started_s: float  # clock time of the first trigger
    rereads: list[Reread] = field(default_factory=list)

    @property
    def flagged_Hz(self) -> list[float]:
        """Frequencies whose two reads disagreed with each other and with the neighbours."""
        return [r.frequency_Hz for r in self.rereads if r.verdict == "flagged"]


def log_frequencies(start_Hz: float, stop_Hz: float, points_per_decade: int) -> list[float]:
    """Log-spaced frequencies from ``start_Hz`` to ``stop_Hz`` inclusive (either direction)."""
    if start_Hz <= 0 or stop_Hz <= 0 or start_Hz == stop_Hz:
        raise ValueError(f"frequencies must be > 0 and differ: start {start_Hz:g} Hz, stop {stop_Hz:g} Hz")
    if points_per_decade < 1:
        raise ValueError(f"points_per_decade must be >= 1, not {points_per_decade}")
    n = round(points_per_decade * abs(math.log10(stop_Hz / start_Hz))) + 1
    frequencies = [float(f) for f in np.logspace(math.log10(start_Hz), math.log10(stop_Hz), max(n, 2))]
    frequencies[0], frequencies[-1] = start_Hz, stop_Hz  # exact ends: 10^log10(2e6) is 2000000.0000000005
    return frequencies


def measure_spectrum(analyzer: ImpedanceAnalyzer, clock: Clock, frequencies: list[float],
                     should_stop: Callable[[], bool] = lambda: False,
                     on_point: Callable[[int, int], None] = lambda done, total: None,
                     on_reread: Callable[[Reread], None] = lambda reread: None) -> Sweep:
    """Measure ``frequencies`` one by one, telling ``on_point`` how many are done, then measure each point that
    disagrees with its neighbours once more (see the module docstring). Stops early when asked to, returning
    what was measured (unchecked)."""
    points: list[Point] = []
    started_s = clock.now()
    if should_stop():
        return Sweep(points, False, started_s)
    with closing(analyzer.sweep(frequencies, clock)) as measured:  # closing it early ends the measurement
        for point in measured:
            points.append(point)
            on_point(len(points), len(frequencies))
            if should_stop() and len(points) < len(frequencies):
                return Sweep(points, False, started_s)
    sweep = Sweep(points, True, started_s)
    _recheck(analyzer, clock, sweep, should_stop, on_reread)
    return sweep


def _measure(analyzer: ImpedanceAnalyzer, clock: Clock, f: float) -> complex:
    """One frequency measured again (a sweep of one point)."""
    with closing(analyzer.sweep([f], clock)) as measured:
        return next(iter(measured))[1]


def _recheck(analyzer: ImpedanceAnalyzer, clock: Clock, sweep: Sweep, should_stop: Callable[[], bool],
             on_reread: Callable[[Reread], None]) -> None:
    """Measure each suspect once more and keep the read the rule says (module docstring)."""
    f, z = zip(*sweep.points, strict=True)
    check = check_points(f, z)
    for i in check.suspects:
        if should_stop():
            return
        first, second = z[i], _measure(analyzer, clock, f[i])
        verdict = "replaced" if check.fits(i, second) else "confirmed" if check.same(i, first, second) else "flagged"
        reread = Reread(f[i], first, second, verdict)
        sweep.points[i] = (f[i], reread.kept)
        sweep.rereads.append(reread)
        on_reread(reread)
