"""Lin-KK validation of an impedance spectrum (Schönleber et al., Electrochim. Acta 131 (2014) 20–27).

A spectrum that obeys the Kramers–Kronig relations (linear, causal, stationary) can be reproduced by a series
resistance, M RC elements with fixed time constants τ_k log-spaced from 1/ω_max to 1/ω_min, a series inductance
and (``add_capacitance``, for spectra without a low-frequency intercept such as a Warburg tail) a series
capacitance. The model is linear in R_0, R_k, L and 1/C, so each M is one weighted linear least-squares solve
(weights 1/|Z|). M grows until μ = 1 − Σ_{R_k<0}|R_k| / Σ_{R_k≥0}|R_k| ≤ c (0.85): once negative
resistances appear the model starts to fit noise. If no M up to ``max_rc`` meets it, M = ``max_rc``.

One departure from Schönleber's algorithm (and impedance.py's ``linKK``, which starts at M = 1): M starts at
1.5 time constants per decade of the sweep (``min_rc_per_decade``). Coarser grids cannot follow a depressed arc,
so the solve puts negative resistances in them from underfitting, which μ mistakes for overfitting: on a
noise-free R0-p(R1,CPE1)-W1 spectrum over 7 decades μ dips to 0.84 at M = 7 with 5 % residuals, then stays
above 0.9 until M ≈ 27. ``min_rc_per_decade=0`` gives the original algorithm.

The residuals (Z − Z_fit)/|Z|, real and imaginary, show where the spectrum is not KK-consistent; drift during a
sweep shows up at the low-frequency end, where the sweep spends its time.

Pass rule (science.md §3.3, after Eckhardt et al. 2023): at least 90 % of the residuals (real and imaginary
parts counted separately) lie within ±1 % and none exceeds 4 %. Noise of σ ≈ 0.4 % of |Z| per part is about
what the rule tolerates; more noise fails it as a spectrum of poor quality.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labctl.analysis.spectrum import check_spectrum

__all__ = ["KKResult", "lin_kk"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FitType = Literal["complex", "real", "imag"]
MU_CUTOFF = 0.85
MAX_RC = 50
MIN_RC_PER_DECADE = 1.5
WITHIN, FRACTION, HARD_LIMIT = 0.01, 0.90, 0.04


@dataclass(frozen=True, eq=False)
class KKResult:
    """Lin-KK outcome: the number of RC elements M, μ, relative residuals per point (high to low frequency)
    and the pass/fail verdict with the rule that gave it."""

    n_rc: int
    mu: float
    frequency_Hz: np.ndarray
    residuals_real: np.ndarray  # (Z' − Z'_fit)/|Z|
    residuals_imag: np.ndarray  # (Z'' − Z''_fit)/|Z|
    impedance_fit_ohm: np.ndarray
    fraction_within: float  # of the residuals (real and imaginary) within ±WITHIN
    max_abs_residual: float
    passed: bool
    rule: str

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rule": self.rule, "n_rc": self.n_rc, "mu": self.mu,
                "fraction_within": self.fraction_within, "max_abs_residual": self.max_abs_residual,
                "frequency_Hz": self.frequency_Hz.tolist(), "residuals_real": self.residuals_real.tolist(),
                "residuals_imag": self.residuals_imag.tolist()}


def lin_kk(frequency_Hz: Sequence[float] | np.ndarray, impedance_ohm: Sequence[complex] | np.ndarray, *,
           c: float = MU_CUTOFF, max_rc: int = MAX_RC, min_rc_per_decade: float = MIN_RC_PER_DECADE,
           fit_type: FitType = "complex",
           add_capacitance: bool = True, within: float = WITHIN, fraction: float = FRACTION,
           hard_limit: float = HARD_LIMIT) -> KKResult:
    """Lin-KK test of a spectrum (f in Hz, Z in ohm, Z'' < 0 capacitive), with M chosen by the μ criterion
    (from ``min_rc_per_decade`` × decades up to ``max_rc``).

    ``fit_type`` "complex" fits real and imaginary parts together (Schönleber eq. 14); "real" and "imag" fit one
    part and take the series R (or L and C) from the other, as impedance.py's ``linKK`` does. Raises ValueError
    for a bad spectrum or argument."""
    if fit_type not in ("complex", "real", "imag"):
        raise ValueError(f"fit_type must be 'complex', 'real' or 'imag', got {fit_type!r}")
    if not 0 < c <= 1 or max_rc < 1:
        raise ValueError(f"need 0 < c <= 1 and max_rc >= 1, got c={c}, max_rc={max_rc}")
    f, z = check_spectrum(frequency_Hz, impedance_ohm)
    w = 2 * np.pi * f
    first = min(max_rc, max(1, math.ceil(min_rc_per_decade * math.log10(f[0] / f[-1]))))
    for m in range(first, max_rc + 1):
        tau = np.geomspace(1 / w.max(), 1 / w.min(), m)
        coefficients, basis = _solve(w, z, tau, fit_type, add_capacitance)
        mu = _mu(coefficients[1:m + 1])
        if mu <= c:
            break
    z_fit = basis @ coefficients
    residual = (z - z_fit) / np.abs(z)
    parts = np.abs(np.concatenate([residual.real, residual.imag]))
    share = float(np.mean(parts <= within))
    peak = float(parts.max())
    passed = share >= fraction and peak <= hard_limit
    rule = (f"pass if at least {fraction:.0%} of the residuals (real and imaginary parts, relative to |Z|) are "
            f"within ±{within:.0%} and none exceeds {hard_limit:.0%}")
    log.debug("Lin-KK: M=%d mu=%.3f within=%.3f max=%.4f -> %s", m, mu, share, peak, passed)
    return KKResult(m, float(mu), f, residual.real.copy(), residual.imag.copy(), z_fit, share, peak, passed, rule)


def _basis(w: np.ndarray, tau: np.ndarray, add_capacitance: bool) -> np.ndarray:
    """Columns: R_0, the M RC elements (unit resistance), L, and 1/C when asked for; complex, one row per ω."""
    columns = [np.ones_like(w, dtype=complex)]
    columns += list(1 / (1 + 1j * np.outer(w, tau)).T)
    columns.append(1j * w)
    if add_capacitance:
        columns.append(-1j / w)
    return np.column_stack(columns)


def _solve(w: np.ndarray, z: np.ndarray, tau: np.ndarray, fit_type: FitType,
           add_capacitance: bool) -> tuple[np.ndarray, np.ndarray]:
    basis = _basis(w, tau, add_capacitance)
    scale = 1 / np.abs(z)
    a = basis * scale[:, None]
    b = z * scale
    m = len(tau)
    if fit_type == "complex":
        x = _lstsq(np.vstack([a.real, a.imag]), np.concatenate([b.real, b.imag]))
    elif fit_type == "real":  # R_0 and R_k from Z'; then L (and C) from what Z'' leaves
        x = np.zeros(basis.shape[1])
        x[:m + 1] = _lstsq(a.real[:, :m + 1], b.real)
        rest = b.imag - a.imag[:, :m + 1] @ x[:m + 1]
        x[m + 1:] = _lstsq(a.imag[:, m + 1:], rest)
    else:  # R_k, L (and C) from Z''; R_0 from Z' weighted by 1/|Z|² (Boukamp 1995, eq. 7)
        x = np.zeros(basis.shape[1])
        x[1:] = _lstsq(a.imag[:, 1:], b.imag)
        x[0] = np.sum(scale**2 * (z.real - basis.real[:, 1:] @ x[1:])) / np.sum(scale**2)
    return x, basis


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _mu(resistances: np.ndarray) -> float:
    positive = resistances[resistances >= 0].sum()
    if positive == 0:  # no positive mass yet: μ says nothing, keep adding elements
        return 1.0
    return float(1 - np.abs(resistances[resistances < 0]).sum() / positive)
