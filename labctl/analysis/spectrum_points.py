"""Points of a measured sweep that disagree with their log-frequency neighbours beyond the noise.

The Solartron 1260's result lines carry no checksum, so a digit changed on the way is a plausible number. An
impedance spectrum that obeys Kramers–Kronig is smooth in log-frequency on the scale of a decade (the narrowest
relaxation, an ideal RC, spans about two), so each point is predicted from its neighbours: a quadratic in
log f fitted to the ``NEIGHBOURS`` (4) nearest other points, for ln|Z| and for the phase. Between two
neighbours on each side the cubic term cancels, so the prediction error of a smooth curve is of fourth order in
the point spacing (about 1e-4 at 10 points per decade on the simulated presets, 3e-3 at 5), far below a changed
digit that matters.

A point is *suspect* when its residual (ln|Z| or phase, in radians) exceeds both ``NOISE_MULTIPLE`` (5) times the
noise the prediction carries there and ``RESOLUTION``, Lin-KK's ±1 % pass band: a smaller error changes neither a
KK verdict nor a fit beyond its noise, and the floor keeps a spectrum of little noise from being suspected for its
own curvature (up to 0.3 % at 5 points per decade on the presets). The noise is read off the spectrum itself,
robustly: the median absolute residual, divided by how much the prediction amplifies one point's noise, over the
``WINDOW`` (21) points around each point (noise grows towards the ends of a real sweep), × 1.4826 for a Gaussian
σ. Suspects are taken one at a time, worst first, and left out of every later prediction and noise estimate, so
that a bad point does not make its neighbours look bad; only points above the threshold before any was left out
can become suspects, so that predicting across a gap (or past a new end of the sweep) cannot start a cascade.
At most a quarter of the points are taken: beyond that the spectrum is noise, not a few bad reads. Spectra
shorter than ``MIN_POINTS`` (7) are not checked. The ends of a sweep are predicted by extrapolation, which
carries about twice the noise, so they are checked less tightly.

:class:`PointCheck` also judges a point read again (:meth:`PointCheck.fits`: does it agree with its neighbours?
:meth:`PointCheck.same`: do two reads of one point agree, within √2 × the threshold?). What to do with a
suspect is the procedure's decision (``labctl.procedures.spectrum``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from labctl.analysis.kramers_kronig import WITHIN

__all__ = ["PointCheck", "check_points"]

NEIGHBOURS, ORDER = 4, 2
NOISE_MULTIPLE = 5.0
RESOLUTION = WITHIN  # in ln|Z| (a relative error) and in phase (radians)
WINDOW = 21
MIN_POINTS = 7
MAX_SUSPECT_FRACTION = 0.25
GAUSSIAN_MAD = 1.4826  # σ of a Gaussian per unit median absolute deviation


@dataclass(frozen=True)
class PointCheck:
    """The check of one sweep (in its own order): the suspects' indices and what judges a point read again."""

    log_f: np.ndarray
    log_z: np.ndarray  # ln|Z| + j·phase, phase unwrapped along the sweep
    noise: np.ndarray  # (n, 2): noise scale of ln|Z| and of the phase at each point
    suspects: tuple[int, ...]

    def fits(self, i: int, z: complex) -> bool:
        """Whether ``z``, read at point ``i``, agrees with the neighbours that are not suspects."""
        if not _usable(z):
            return False
        offset, amplification = self._offset(i, np.log(complex(z)))
        return bool(np.all(offset <= _limit(amplification, self.noise[i])))

    def same(self, i: int, first: complex, second: complex) -> bool:
        """Whether two reads of point ``i`` agree with each other within the noise (√2: both carry it)."""
        if not (_usable(first) and _usable(second)):
            return False
        d = np.log(complex(second)) - np.log(complex(first))
        return bool(np.all(np.abs([d.real, _wrap(d.imag)]) <= _limit(math.sqrt(2), self.noise[i])))

    def _offset(self, i: int, log_z: complex) -> tuple[np.ndarray, float]:
        """|ln|Z| − predicted|, |phase − predicted| at point ``i`` from its trusted neighbours, and how many times
        one point's noise that difference carries."""
        mask = np.ones(self.log_f.size, dtype=bool)
        mask[list(self.suspects)] = False
        mask[i] = False
        weights, others = _weights(self.log_f, i, mask)
        d = log_z - weights @ self.log_z[others]
        return np.abs([d.real, _wrap(d.imag)]), math.sqrt(1 + float(weights @ weights))


def check_points(frequency_Hz: Sequence[float] | np.ndarray,
                 impedance_ohm: Sequence[complex] | np.ndarray) -> PointCheck:
    """Check a sweep (frequencies monotonic, in the order measured) for points that disagree with their
    neighbours; a point whose |Z| is 0 or not finite is a suspect outright."""
    f = np.asarray(frequency_Hz, dtype=float)
    z = np.asarray(impedance_ohm, dtype=complex)
    usable = np.array([_usable(v) for v in z], dtype=bool)
    log_z = np.zeros(z.size, dtype=complex)
    log_z[usable] = np.log(np.abs(z[usable])) + 1j * np.unwrap(np.angle(z[usable]))
    check = PointCheck(np.log10(f), log_z, np.zeros((z.size, 2)), tuple(np.flatnonzero(~usable)))
    if z.size < MIN_POINTS:
        return check
    check, scores = _judge(check)
    candidates = scores > 1  # a bad point or its neighbours: leaving points out never makes a new suspect
    while len(check.suspects) < MAX_SUSPECT_FRACTION * z.size:
        worst = int(np.argmax(np.where(candidates, scores, 0.0)))
        if not candidates[worst] or scores[worst] <= 1:
            break
        check, scores = _judge(replace(check, suspects=tuple(sorted((*check.suspects, worst)))))
    return check


def _judge(check: PointCheck) -> tuple[PointCheck, np.ndarray]:
    """``check`` with the noise at each point from the residuals of the trusted points, and each point's largest
    residual in units of its threshold (0 for suspects)."""
    n = check.log_f.size
    offsets, amplifications = np.full((n, 2), np.nan), np.ones((n, 1))
    for i in set(range(n)) - set(check.suspects):
        offsets[i], amplifications[i] = check._offset(i, check.log_z[i])
    width = min(WINDOW, n)
    medians = np.nanmedian(sliding_window_view(offsets / amplifications, width, axis=0), axis=-1)  # per window start
    noise = GAUSSIAN_MAD * medians[np.clip(np.arange(n) - WINDOW // 2, 0, n - width)]
    scores = np.nan_to_num(np.max(offsets / _limit(amplifications, noise), axis=1))
    return replace(check, noise=noise), scores


def _weights(log_f: np.ndarray, i: int, trusted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights that predict point ``i`` from its NEIGHBOURS nearest trusted points (by index) with a quadratic in
    log f, and those points' indices."""
    candidates = np.flatnonzero(trusted)
    others = np.sort(candidates[np.argsort(np.abs(candidates - i), kind="stable")[:NEIGHBOURS]])
    x = log_f[others] - log_f[i]
    vandermonde = np.vander(x, ORDER + 1, increasing=True)
    normal = vandermonde.T @ vandermonde
    return vandermonde @ np.linalg.solve(normal, np.eye(ORDER + 1)[0]), others  # least squares' value at x = 0


def _limit(amplification: float | np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The largest residual (ln|Z|, phase) within the noise: NOISE_MULTIPLE × the noise the residual carries, and
    never below RESOLUTION."""
    return np.maximum(NOISE_MULTIPLE * amplification * noise, RESOLUTION)


def _usable(z: complex) -> bool:
    return bool(np.isfinite(z) and abs(z) > 0)


def _wrap(phase: float) -> float:
    """A phase difference in (−π, π]."""
    return float(math.remainder(phase, 2 * math.pi))
