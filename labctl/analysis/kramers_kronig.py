"""Lin-KK validation of an impedance spectrum (Schönleber et al., Electrochim. Acta 131 (2014) 20–27).

A spectrum that obeys the Kramers–Kronig relations (linear, causal, stationary) can be reproduced by a series
resistance, M RC elements with fixed time constants τ_k log-spaced from 1/ω_max to 1/ω_min, a series inductance
and (``add_capacitance``, for spectra without a low-frequency intercept such as a Warburg tail or blocking
electrodes) a series capacitance. The model is linear in R_0, R_k, L and 1/C, so each M is one weighted linear
least-squares solve (weights 1/|Z|); L and 1/C come out near zero where the data call for neither.

Choosing M ("plateau", the default). M grows from 1.5 time constants per decade of the sweep
(``min_rc_per_decade``; coarser grids cannot follow even an ideal arc) until the fit reaches its noise floor: M is
the smallest number whose reduced pseudo-χ² (Σ of the squared relative residuals over 2N − M − 3 degrees of
freedom: the residual variance) is at most ``PLATEAU_FACTOR`` (2) times the lowest that the next
``PLATEAU_WINDOW`` (10) values of M reach. Underfitting shows as χ² that still falls steeply with M; at the noise
floor more elements only follow the noise, and the variance per degree of freedom stops falling. On noise-free
data χ² falls towards round-off, so it is floored at an RMS residual of ``RESOLVED`` (0.1 % of |Z|, a tenth of the
pass band): there the verdict cannot change. A cell that drifts during the sweep, or a bad point, is not
KK-consistent, so its χ² levels off above the pass band; elements added beyond the plateau would slowly absorb
the drift, which is why the smallest M at the plateau is taken.

Why not Schönleber's μ criterion (``method="mu"``: the smallest M with μ = 1 − Σ_{R_k<0}|R_k| / Σ_{R_k≥0}|R_k|
≤ c = 0.85)? It reads negative resistances as overfitting, but an underfit grid makes them too: on an ideal
R0 + (R1‖C) spectrum (70 points, 1 MHz – 0.1 Hz, no noise) μ = 0.69 at M = 11 with 2.6 % residuals, so perfect
data failed. With ``min_rc_per_decade=0``, ``method="mu"`` is the original algorithm (impedance.py's ``linKK``).
Why not pyimpspec (5.1, Plank et al. 2022 / Yrjänä and Bobacka 2024, which also extends the τ range)? It agrees
on the verdicts in the tests, where it serves as the independent oracle, but takes about 5 s per spectrum where
this takes milliseconds, and an in-situ series has hundreds of spectra.

The residuals (Z − Z_fit)/|Z|, real and imaginary, show where the spectrum is not KK-consistent; drift during a
sweep shows up at the low-frequency end, where the sweep spends its time. Their RMS (``relative_rmse``) is the
spectrum's noise level for a valid spectrum: no circuit can fit much better, so the EIS fit is judged against it.

Pass rule (science.md §3.3, after Eckhardt et al. 2023): at least 90 % of the residuals (real and imaginary
parts counted separately) lie within ±1 % and none exceeds 4 %. Noise of σ ≈ 0.4 % of |Z| per part is about
what the rule tolerates; more noise fails it as a spectrum of poor quality. A single point 8 % or more off fails
it; a few points a few percent off can share their error with the fit and pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from labctl.analysis.spectrum import check_spectrum

__all__ = ["KKResult", "lin_kk"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

FitType = Literal["complex", "real", "imag"]
Method = Literal["plateau", "mu"]
MU_CUTOFF = 0.85
MAX_RC = 50
MIN_RC_PER_DECADE = 1.5
PLATEAU_FACTOR, PLATEAU_WINDOW = 2.0, 10
RESOLVED = 1e-3  # RMS relative residual below which more RC elements cannot change the verdict
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
    method: Method = "plateau"

    @property
    def relative_rmse(self) -> float:
        """RMS of the relative residuals, real and imaginary: the spectrum's noise level when it passes."""
        return float(np.sqrt(np.mean(np.concatenate([self.residuals_real, self.residuals_imag]) ** 2)))

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rule": self.rule, "n_rc": self.n_rc, "method": self.method, "mu": self.mu,
                "fraction_within": self.fraction_within, "max_abs_residual": self.max_abs_residual,
                "relative_rmse": self.relative_rmse, "frequency_Hz": self.frequency_Hz.tolist(),
                "residuals_real": self.residuals_real.tolist(), "residuals_imag": self.residuals_imag.tolist()}


@dataclass(frozen=True)
class _Fit:
    """The Lin-KK fit with M RC elements: its coefficients (R_0, R_1..R_M, L[, 1/C]) and basis."""

    m: int
    coefficients: np.ndarray
    basis: np.ndarray
    variance: float  # reduced pseudo-χ²: squared relative residuals per degree of freedom

    @property
    def mu(self) -> float:
        return _mu(self.coefficients[1:self.m + 1])


def lin_kk(frequency_Hz: Sequence[float] | np.ndarray, impedance_ohm: Sequence[complex] | np.ndarray, *,
           c: float = MU_CUTOFF, max_rc: int = MAX_RC, min_rc_per_decade: float = MIN_RC_PER_DECADE,
           fit_type: FitType = "complex", method: Method = "plateau",
           add_capacitance: bool = True, within: float = WITHIN, fraction: float = FRACTION,
           hard_limit: float = HARD_LIMIT) -> KKResult:
    """Lin-KK test of a spectrum (f in Hz, Z in ohm, Z'' < 0 capacitive), with M chosen by ``method`` from
    ``min_rc_per_decade`` × decades up to ``max_rc`` (and at most one per point): "plateau", the smallest M at
    the noise floor of the residuals, or "mu", Schönleber's μ ≤ ``c`` (see the module docstring).

    ``fit_type`` "complex" fits real and imaginary parts together (Schönleber eq. 14); "real" and "imag" fit one
    part and take the series R (or L and C) from the other, as impedance.py's ``linKK`` does. Raises ValueError
    for a bad spectrum or argument."""
    if fit_type not in ("complex", "real", "imag"):
        raise ValueError(f"fit_type must be 'complex', 'real' or 'imag', got {fit_type!r}")
    if method not in ("plateau", "mu"):
        raise ValueError(f"method must be 'plateau' or 'mu', got {method!r}")
    if not 0 < c <= 1 or max_rc < 1:
        raise ValueError(f"need 0 < c <= 1 and max_rc >= 1, got c={c}, max_rc={max_rc}")
    f, z = check_spectrum(frequency_Hz, impedance_ohm)
    last = min(max_rc, f.size)  # a τ grid finer than the frequency grid only fits noise
    first = min(last, max(1, math.ceil(min_rc_per_decade * math.log10(f[0] / f[-1]))))
    fits = _fits(2 * np.pi * f, z, range(first, last + 1), fit_type, add_capacitance)
    chosen = _by_plateau(fits) if method == "plateau" else _by_mu(fits, c)
    z_fit = chosen.basis @ chosen.coefficients
    residual = (z - z_fit) / np.abs(z)
    parts = np.abs(np.concatenate([residual.real, residual.imag]))
    share = float(np.mean(parts <= within))
    peak = float(parts.max())
    passed = share >= fraction and peak <= hard_limit
    rule = (f"pass if at least {fraction:.0%} of the residuals (real and imaginary parts, relative to |Z|) are "
            f"within ±{within:.0%} and none exceeds {hard_limit:.0%}")
    log.debug("Lin-KK (%s): M=%d mu=%.3f within=%.3f max=%.4f -> %s", method, chosen.m, chosen.mu, share, peak,
              passed)
    return KKResult(chosen.m, float(chosen.mu), f, residual.real.copy(), residual.imag.copy(), z_fit, share, peak,
                    passed, rule, method)


def _fits(w: np.ndarray, z: np.ndarray, ms: range, fit_type: FitType, add_capacitance: bool) -> Iterator[_Fit]:
    """The Lin-KK fit for each M in ``ms``, computed as it is asked for."""
    for m in ms:
        coefficients, basis = _solve(w, z, np.geomspace(1 / w.max(), 1 / w.min(), m), fit_type, add_capacitance)
        relative = (z - basis @ coefficients) / np.abs(z)
        dof = max(2 * z.size - coefficients.size, 1)
        yield _Fit(m, coefficients, basis, float(np.sum(relative.real**2 + relative.imag**2)) / dof)


def _by_mu(fits: Iterator[_Fit], c: float) -> _Fit:
    """Schönleber's criterion: the first fit with μ <= c, else the last."""
    for fit in fits:
        if fit.mu <= c:
            break
    return fit


def _by_plateau(fits: Iterator[_Fit]) -> _Fit:
    """The first fit whose variance (floored at RESOLVED²) is within PLATEAU_FACTOR of the lowest of the next
    PLATEAU_WINDOW fits (of those there are: the last fit always qualifies)."""
    seen = [next(fits)]
    for fit in fits:
        seen.append(fit)
        if len(seen) > PLATEAU_WINDOW and _levelled(seen[-PLATEAU_WINDOW - 1], seen[-PLATEAU_WINDOW:]):
            return seen[-PLATEAU_WINDOW - 1]
    return next(s for i, s in enumerate(seen) if _levelled(s, seen[i + 1:]))


def _levelled(fit: _Fit, following: list[_Fit]) -> bool:
    lowest = min((g.variance for g in following), default=fit.variance)
    return fit.variance <= PLATEAU_FACTOR * max(lowest, RESOLVED**2)

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
