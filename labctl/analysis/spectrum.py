"""An impedance spectrum as arrays: input checks, and what can be read off it without a model.

Conventions: frequencies in Hz, impedance in ohm as complex Z = Z' + jZ'' with Z'' < 0 for capacitive arcs
(as instruments and impedance.py report it; BioLogic's −Im(Z) must be negated first). Checked spectra are
ordered from high to low frequency, the order of a sweep.

Model-free features (science.md §3.5), on −Z'' smoothed by a Savitzky–Golay filter (7 points, order 2,
over the point index, which is log-frequency for a log sweep) so that noise makes no spurious extrema:

- ``R_HF``: Z' where −Z'' crosses zero going from an inductive (−Z'' < 0) high-frequency end into the first arc,
  interpolated; without such a crossing, Z' at the highest frequency (an upper estimate of the intercept).
- arcs: maxima of the smoothed −Z'' that stand at least 2 % of the spread of Z' above the valley that follows
  them (the first point counts when −Z'' falls from it: an arc whose apex lies at or above the top frequency).
- noise: the RMS scatter of Z' and Z'' about their Savitzky–Golay smoothing, relative to |Z|, over interior
  points (corrected for the part of the noise the filter keeps); the smooth curvature of a spectrum adds about
  0.1 % to it.
- tail start: the minimum of the smoothed −Z'' below the apex frequency of the last (lowest-frequency) arc;
  ``R_tot`` = Z' there. When −Z'' only falls after the last arc, the arc has closed on the real axis if its last
  point is below 10 % of the apex height (``R_tot`` = Z' at the lowest frequency); otherwise the sweep ended
  before the arc closed and ``R_tot`` is undefined (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal import find_peaks, savgol_coeffs

__all__ = ["MIN_POINTS", "Arc", "SpectrumFeatures", "check_spectrum", "spectrum_features"]

MIN_POINTS = 10  # fewer points cannot pin down a circuit with an arc and a tail (5 parameters) nor Lin-KK
SMOOTH_POINTS, SMOOTH_ORDER = 7, 2
ARC_HEIGHT = 0.02  # an arc's apex stands this fraction of the spectrum's Z' span above the valley after it
ARC_CLOSED = 0.1  # −Z'' at the last point below this fraction of the apex height: the arc reached the axis


def check_spectrum(frequency_Hz: Sequence[float] | np.ndarray,
                   impedance_ohm: Sequence[complex] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a spectrum and return (f, Z) as float and complex arrays ordered from high to low frequency.

    Raises ValueError naming the problem and its fix: fewer than ``MIN_POINTS`` points, lengths that differ,
    NaN or infinite values, an impedance that is 0 Ω everywhere, frequencies that are not positive, repeated, or
    not monotonic (a sweep must run one way)."""
    f = np.asarray(frequency_Hz, dtype=float).ravel()
    z = np.asarray(impedance_ohm, dtype=complex).ravel()
    if f.size != z.size:
        raise ValueError(f"the spectrum has {f.size} frequencies but {z.size} impedance values; give one "
                         "impedance per frequency")
    if f.size < MIN_POINTS:
        raise ValueError(f"the spectrum has {f.size} points; the analysis needs at least {MIN_POINTS} "
                         "(measure more points per decade or a wider frequency range)")
    _require_finite(f, "frequency")
    _require_finite(z, "impedance")
    if not np.abs(z).any():
        raise ValueError("every impedance of the spectrum is 0 Ω, so there is nothing to fit: the analyzer measured "
                         "no cell (leads shorted together or a range error); check the connections and re-measure")
    if (f <= 0).any():
        i = int(np.flatnonzero(f <= 0)[0])
        raise ValueError(f"frequency at point {i} is {f[i]:g} Hz; frequencies must be positive (remove that point)")
    steps = np.diff(f)
    if (steps == 0).any():
        i = int(np.flatnonzero(steps == 0)[0]) + 1
        raise ValueError(f"frequency {f[i]:g} Hz appears twice (points {i - 1} and {i}); remove or average "
                         "the repeated measurement")
    direction = np.sign(steps[0])
    turns = np.flatnonzero(np.sign(steps) != direction)
    if turns.size:
        i = int(turns[0]) + 1
        raise ValueError(f"frequency is not monotonic: point {i} ({f[i]:g} Hz) follows {f[i - 1]:g} Hz in a sweep "
                         f"that {'falls' if direction < 0 else 'rises'}; give one sweep, sorted by frequency")
    return (f, z) if direction < 0 else (f[::-1].copy(), z[::-1].copy())


def _require_finite(values: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{what} at point {i} is {values[i]}, not a finite number ({bad.size} such point"
                         f"{'s' if bad.size > 1 else ''}); remove or re-measure those points")


@dataclass(frozen=True)
class Arc:
    """A maximum of −Z'': its apex (Hz, index into the checked spectrum) and the Z' span it covers (ohm)."""

    apex_Hz: float
    index: int
    width_ohm: float


@dataclass(frozen=True)
class SpectrumFeatures:
    """Model-free readings of a checked spectrum (see the module docstring for the definitions)."""

    R_HF_ohm: float
    R_tot_ohm: float | None
    tail_start_Hz: float | None
    tail_start_index: int | None
    arcs: tuple[Arc, ...]
    inductive_Hz: float | None  # highest frequency is inductive (−Z'' < 0): the crossing frequency
    noise: float  # relative scatter of Z' and Z'' (fraction of |Z|)
    note: str | None  # why R_tot is undefined, or None


def spectrum_features(f: np.ndarray, z: np.ndarray) -> SpectrumFeatures:
    """Read R_HF, the arcs and the tail start off a spectrum already passed through :func:`check_spectrum`."""
    minus_im = _smooth(-z.imag)
    r_hf, crossing = _high_frequency_intercept(f, z)
    noise = _noise(z)
    peaks = _apexes(minus_im, ARC_HEIGHT * float(np.ptp(z.real)))
    if not peaks.size:
        return SpectrumFeatures(r_hf, None, None, None, (), crossing, noise,
                                "no arc in the spectrum (−Z'' has no maximum), so no tail start")
    tail = int(peaks[-1] + np.argmin(minus_im[peaks[-1]:]))
    note = None
    if tail == len(f) - 1 and minus_im[-1] > ARC_CLOSED * minus_im[peaks[-1]]:
        note = "the sweep ends before the last arc closes; extend it to lower frequency"
    valleys = [int(a + np.argmin(minus_im[a:b + 1])) for a, b in pairwise(peaks)] + [tail]
    edges = [r_hf] + [float(z.real[v]) for v in valleys]
    arcs = tuple(Arc(float(f[p]), int(p), max(edges[k + 1] - edges[k], 0.0)) for k, p in enumerate(peaks))
    if note:
        return SpectrumFeatures(r_hf, None, None, None, arcs, crossing, noise, note)
    return SpectrumFeatures(r_hf, float(z.real[tail]), float(f[tail]), tail, arcs, crossing, noise, None)


def _apexes(minus_im: np.ndarray, height: float) -> np.ndarray:
    """Indices of the maxima of smoothed −Z'' (the first point too, when −Z'' falls from it: an apex at or
    above the top frequency) that stand ``height`` above the lowest point before the next such maximum."""
    candidates = list(find_peaks(minus_im)[0])
    if minus_im[0] > minus_im[1]:
        candidates.insert(0, 0)
    kept: list[int] = []
    for p in reversed(candidates):
        if minus_im[p] - minus_im[p:kept[0] if kept else None].min() >= height:
            kept.insert(0, p)
    return np.array(kept, dtype=int)


_SMOOTHING = savgol_coeffs(SMOOTH_POINTS, SMOOTH_ORDER)
_KEPT = _SMOOTHING[SMOOTH_POINTS // 2]  # weight of a point in its own smoothing


def _smooth(y: np.ndarray) -> np.ndarray:
    """Savitzky–Golay smoothing (scipy.signal.savgol_filter with mode="mirror", coefficients computed once)."""
    return convolve1d(y, _SMOOTHING, mode="mirror")


def _noise(z: np.ndarray) -> float:
    edge = SMOOTH_POINTS // 2
    scatter = np.concatenate([z.real - _smooth(z.real), z.imag - _smooth(z.imag)]) / np.tile(np.abs(z), 2)
    inner = np.concatenate([scatter[edge:z.size - edge], scatter[z.size + edge:2 * z.size - edge]])
    return float(np.sqrt(np.mean(inner**2) / (1 - _KEPT)))


def _high_frequency_intercept(f: np.ndarray, z: np.ndarray) -> tuple[float, float | None]:
    minus_im = -z.imag
    if minus_im[0] >= 0:
        return float(z.real[0]), None
    up = np.flatnonzero((minus_im[:-1] < 0) & (minus_im[1:] >= 0))
    if not up.size:
        return float(z.real[0]), None
    i = int(up[0])
    t = minus_im[i] / (minus_im[i] - minus_im[i + 1])
    return float(z.real[i] + t * (z.real[i + 1] - z.real[i])), float(f[i] + t * (f[i + 1] - f[i]))
