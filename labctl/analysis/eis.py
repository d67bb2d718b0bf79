"""Impedance spectrum analysis: equivalent-circuit fit, R_b, R_tot, ASR, conductivity and Lin-KK.

Fitting (:func:`fit_circuit`). Weighted complex non-linear least squares on the stacked real and imaginary
residuals, each divided by |Z| of the data point ("modulus" weighting, the usual choice when the measurement
variances are unknown: every decade has a say instead of the largest impedances dominating; ``weighting="unit"``
fits in ohm). Parameters are fitted as their logarithms, so they are positive by construction; a CPE's α is
fitted through α = sin²x, which keeps it in [0, 1] without bounds. The problem is unbounded, so
``scipy.optimize.least_squares`` runs MINPACK's Levenberg–Marquardt (``method="lm"``) with the circuit's
analytic Jacobian. Standard errors are √diag(s²(JᵀJ)⁻¹) in parameter space with s² the reduced chi-square, as
``scipy.optimize.curve_fit`` (and so impedance.py) reports them.

Initial guesses come from the data (:func:`initial_guess`): series R from the high-frequency intercept, each
parallel group from one arc of −Z'' (its R from the arc's width on the real axis, its C or CPE Q from the apex
frequency, α = 0.85), a Warburg from −Z''·√ω at the low-frequency end, a series L from the inductive part at the
top frequency. Write arcs from high to low frequency (``R0-p(R1,CPE1)-p(R2,CPE2)-W1``): groups take the arcs in
that order. When the circuit has more parallel groups than the spectrum shows arcs, a hidden arc is also tried
on either side of the visible one. If the best fit so far did not converge or leaves a relative RMS residual
above 2 % or above 1.5 × the scatter of the data (see :mod:`labctl.analysis.spectrum`), more starts are tried
(α of 0.65 and 0.97, apex frequencies ×/÷ 10, diffusion ×/÷ 10) until one fits; the best is kept.

Resistances (:func:`analyze_spectrum`, science.md §3.5 and §6):

- ``R_HF_ohm``: the high-frequency intercept read off the data (see :mod:`labctl.analysis.spectrum`).
- ``R_tot_spectrum_ohm``: the model-free real-axis width up to the start of the low-frequency tail, measured from
  the origin (so it includes R_b); biased high by the tail's own real part.
- ``R_b_ohm`` and ``R_tot_fit_ohm``: the fitted circuit's resistance at ω → ∞ and at ω → 0 without inductors and
  diffusion elements (R0 and R0 + ΣR_k for ``R0-p(R1,CPE1)-…-W1``).
- ``R_tot_ohm``: R_tot_fit when it is finite, else R_tot_spectrum; ``R_int_ohm`` = R_tot − R_b.
- per interface of a symmetric cell ``asr_per_interface_ohm_cm2`` = R_int·A/2; whole cell ``asr_cell_ohm_cm2``
  = R_int·A; σ = L/(R_b·A) in S/cm and mS/cm when the thickness L is given.

Inductive high-frequency points (:func:`analyze_spectrum`). Leads make Z'' > 0 at the top of a sweep to 1–2 MHz;
a circuit without an inductance bends its bulk and interface arcs to follow them (R_b, R1 off by 1–5 %). When
the highest-frequency point is inductive beyond the noise (Z'' > 3 × the scatter of |Z|) and the circuit has no
inductor, a series inductance ``L0`` is added to it and the fit says so (``circuit`` is the one fitted,
``circuit_requested`` the one asked for, and a warning names the inductive points). The points are kept rather
than left out: at the top of the sweep they carry the foot of the bulk arc, which R_b rests on.

Fit quality. The Lin-KK residuals' RMS is the spectrum's noise level (a KK-consistent model fits down to the
noise, no further); a fit whose relative RMS residual is above 3 × that (or above 2 %) misses a feature of the
data and is flagged with a warning. On noise-free data the noise level is taken as the Lin-KK floor of 0.1 %.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from labctl.analysis.circuits import Circuit, Element, Omega, Parallel, parse_circuit
from labctl.analysis.kramers_kronig import RESOLVED, KKResult, lin_kk
from labctl.analysis.spectrum import SpectrumFeatures, check_spectrum, spectrum_features
from labctl.bdf_columns import FREQUENCY, SPECTRUM, SPECTRUM_INDEX
from labctl.bdf_columns import IMAGINARY_IMPEDANCE as IMAGINARY
from labctl.bdf_columns import REAL_IMPEDANCE as REAL
from labctl.store.folder import SPECTRA

__all__ = ["DEFAULT_CIRCUIT", "EISResult", "FitResult", "analyze_eis", "analyze_spectrum", "brief", "check_spectrum",
           "fit_circuit", "headline", "initial_guess", "load_spectrum_csv"]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

DEFAULT_CIRCUIT = "R0-p(R1,CPE1)-W1"  # bulk, one interface arc (both interfaces of a symmetric cell), Warburg
SPECTRUM_KEYS = (SPECTRUM_INDEX, SPECTRUM)  # the store's spectra table, and the plain name
ALPHA_GUESS = 0.85
POOR_FIT = 0.02  # relative RMS residual above which more starts are tried, and a warning is given
NOISE_FACTOR = 1.5  # ... or above this many times the scatter of the data (spectrum_features().noise)
DISAGREE = 0.05  # fitted and read-off R_tot differing by more than this fraction get a warning
NOISE_FLAG = 3.0  # a fit whose RMS residual exceeds this many times the Lin-KK residuals' RMS gets a warning
INDUCTIVE_NOISE = 3.0  # the top point is inductive when Z'' > this many times the scatter of |Z|
LEAD_INDUCTOR = "L0"  # added in series when the top points are inductive and the circuit has no inductor
MAX_EVALUATIONS = 50  # per parameter and start: a start still wandering after that is abandoned
LOG_LIMIT = 300.0  # |ln p| kept below this so that a parameter the data cannot see does not overflow
Weighting = Literal["modulus", "unit"]


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted circuit. ``values``/``standard_errors`` follow ``keys`` (``R0_ohm``, ``CPE1_Q`` …); residuals
    are (Z − Z_fit)/|Z| per point, high to low frequency. ``chi_square`` is the weighted sum of squared residuals
    (dimensionless for modulus weighting, ohm² for unit weighting); ``reduced_chi_square`` divides it by the
    2N − P degrees of freedom; ``relative_rmse`` is the RMS of the relative residuals whatever the weighting."""

    circuit: str
    keys: tuple[str, ...]
    values: np.ndarray
    standard_errors: np.ndarray
    frequency_Hz: np.ndarray
    impedance_ohm: np.ndarray
    impedance_fit_ohm: np.ndarray
    weighting: Weighting
    chi_square: float
    reduced_chi_square: float
    relative_rmse: float
    converged: bool
    starts: int
    evaluations: int

    @property
    def parameters(self) -> dict[str, float]:
        return dict(zip(self.keys, self.values.tolist(), strict=True))

    @property
    def residuals_real(self) -> np.ndarray:
        return (self.impedance_ohm.real - self.impedance_fit_ohm.real) / np.abs(self.impedance_ohm)

    @property
    def residuals_imag(self) -> np.ndarray:
        return (self.impedance_ohm.imag - self.impedance_fit_ohm.imag) / np.abs(self.impedance_ohm)

    @property
    def model(self) -> Circuit:
        return parse_circuit(self.circuit)

    def resistances(self) -> tuple[float, float]:
        """(R_b, R_tot) of the fitted circuit, ohm: see :meth:`Circuit.resistances`."""
        return self.model.resistances(self.values)

    def to_dict(self) -> dict:
        return {"circuit": self.circuit, "parameters": self.parameters,
                "standard_errors": {k: _finite(v) for k, v in zip(self.keys, self.standard_errors, strict=True)},
                "weighting": self.weighting, "chi_square": self.chi_square,
                "reduced_chi_square": self.reduced_chi_square, "relative_rmse": self.relative_rmse,
                "converged": self.converged, "starts": self.starts, "evaluations": self.evaluations}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class _Problem:
    """The least-squares problem in fit space: p = exp(x), and α = sin²(x) for CPE exponents, so that every
    parameter stays in its range (p > 0, 0 ≤ α ≤ 1) without bounds and MINPACK's Levenberg–Marquardt applies
    (bounded trust-region methods cost several times more per iteration here)."""

    def __init__(self, circuit: Circuit, f: np.ndarray, z: np.ndarray, weighting: Weighting):
        if weighting not in ("modulus", "unit"):
            raise ValueError(f"weighting must be 'modulus' or 'unit', got {weighting!r}")
        self.circuit, self.f, self.z, self.weighting = circuit, f, z, weighting
        self.omega = Omega(f)
        self.weight = 1 / np.abs(z) if weighting == "modulus" else np.ones(z.size)
        self.log = np.array([not p.fraction for p in circuit.parameters])
        self.evaluations = 0

    def to_x(self, p: np.ndarray) -> np.ndarray:
        return np.where(self.log, np.log(np.maximum(p, 1e-300)), np.arcsin(np.sqrt(np.clip(p, 0, 1))))

    def to_p(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.log, np.exp(np.clip(x, -LOG_LIMIT, LOG_LIMIT)), np.sin(x) ** 2)

    def dp_dx(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.where(self.log, p, np.sin(2 * x))

    def residuals(self, x: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        d = (self.circuit.impedance(self.omega, self.to_p(x)) - self.z) * self.weight
        return np.concatenate([d.real, d.imag])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        p = self.to_p(x)
        _, jac = self.circuit.impedance_and_jacobian(self.omega, p)
        jac *= self.dp_dx(x, p)[:, None] * self.weight
        return np.concatenate([jac.real, jac.imag], axis=1).T

    def solve(self, p0: np.ndarray):
        return least_squares(self.residuals, self.to_x(p0), jac=self.jacobian, method="lm",
                             ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=MAX_EVALUATIONS * len(p0))


def fit_circuit(frequency_Hz: Sequence[float] | np.ndarray, impedance_ohm: Sequence[complex] | np.ndarray,
                circuit: str = DEFAULT_CIRCUIT, *, guess: Mapping[str, float] | Sequence[float] | None = None,
                weighting: Weighting = "modulus", features: SpectrumFeatures | None = None) -> FitResult:
    """Fit ``circuit`` (impedance.py syntax) to a spectrum (f in Hz, Z in ohm, Z'' < 0 capacitive).

    ``guess`` (a vector in parameter order, or a mapping by key such as ``{"R0_ohm": 50}`` completing the
    data-derived guess) is tried first; the data-derived guess is always tried too. ``features`` may pass
    :func:`~labctl.analysis.spectrum.spectrum_features` already computed for this spectrum. Raises ValueError for
    a bad spectrum, circuit, weighting or guess."""
    model = parse_circuit(circuit)
    f, z = check_spectrum(frequency_Hz, impedance_ohm)
    features = features or spectrum_features(f, z)
    problem = _Problem(model, f, z, weighting)
    base = initial_guess(model, f, z, features)
    first = ([_given_guess(model, base, guess)] if guess is not None else []) + [base]
    if sum(isinstance(t, Parallel) for t in model.terms) > len(features.arcs):
        # an arc hides in another: where is a guess, so try it on either side
        first += [initial_guess(model, f, z, features, start=_Start(split=side)) for side in ("high", "low")]
    later = (initial_guess(model, f, z, features, start=start) for start in MORE_STARTS)
    best, tried = None, 0
    for p0 in chain(first, later):
        if tried >= len(first) and _good(best, problem, features.noise):
            break
        tried += 1
        solution = problem.solve(p0)
        if best is None or solution.cost < best.cost:
            best = solution
    return _result(problem, best, tried)


def _good(solution, problem: _Problem, noise: float) -> bool:
    """Converged, with a relative RMS residual below 2 % and below 1.5 × the scatter of the data."""
    return solution.status > 0 and _relative_rmse(problem, solution.x) <= min(POOR_FIT, NOISE_FACTOR * noise)


def _relative_rmse(problem: _Problem, x: np.ndarray) -> float:
    d = (problem.circuit.impedance(problem.omega, problem.to_p(x)) - problem.z) / np.abs(problem.z)
    return float(np.sqrt(np.mean(np.concatenate([d.real, d.imag]) ** 2)))


def _result(problem: _Problem, solution, starts: int) -> FitResult:
    p = problem.circuit.in_frequency_order(problem.to_p(solution.x))
    z_fit, jac = problem.circuit.impedance_and_jacobian(problem.omega, p)
    weighted = (z_fit - problem.z) * problem.weight
    chi_square = float(np.sum(weighted.real**2 + weighted.imag**2))
    dof = 2 * problem.z.size - p.size
    reduced = chi_square / dof if dof > 0 else np.nan
    jac *= problem.weight  # covariance in parameter space, s²(JᵀJ)⁻¹ as curve_fit reports it
    _, sv, vt = np.linalg.svd(np.concatenate([jac.real, jac.imag], axis=1).T, full_matrices=False)
    keep = sv > sv[0] * 1e-12
    stderr = np.sqrt(np.diag((vt[keep].T / sv[keep] ** 2) @ vt[keep] * reduced))
    relative = (z_fit - problem.z) / np.abs(problem.z)
    rmse = float(np.sqrt(np.mean(np.concatenate([relative.real, relative.imag]) ** 2)))
    fit = FitResult(problem.circuit.text, problem.circuit.keys, p, stderr, problem.f, problem.z, z_fit,
                    problem.weighting, chi_square, float(reduced), rmse, bool(solution.status > 0), starts,
                    problem.evaluations)
    log.debug("fit %s: rmse %.3g after %d starts, %d evaluations", fit.circuit, rmse, starts, problem.evaluations)
    return fit


def _given_guess(model: Circuit, base: np.ndarray, guess: Mapping[str, float] | Sequence[float]) -> np.ndarray:
    if isinstance(guess, Mapping):
        unknown = sorted(set(guess) - set(model.keys))
        if unknown:
            raise ValueError(f"guess names {unknown} are not parameters of {model.text!r}; "
                             f"use {', '.join(model.keys)}")
        return np.array([guess.get(k, b) for k, b in zip(model.keys, base, strict=True)], dtype=float)
    p = np.asarray(guess, dtype=float)
    if p.shape != base.shape or not np.isfinite(p).all():
        raise ValueError(f"guess must hold {base.size} finite numbers ({', '.join(model.keys)}), got {list(p)}")
    return p


@dataclass(frozen=True)
class _Start:
    """How a start departs from the plain data-derived guess."""

    alpha: float = ALPHA_GUESS
    apex_scale: float = 1.0  # arcs' apex frequencies times this
    diffusion_scale: float = 1.0  # diffusion elements' size times this
    split: Literal["even", "high", "low"] = "even"  # where an arc hides when groups outnumber visible arcs


FIRST = _Start()
MORE_STARTS = (_Start(alpha=0.65), _Start(alpha=0.97), _Start(apex_scale=10), _Start(apex_scale=0.1),
               _Start(diffusion_scale=10), _Start(diffusion_scale=0.1))


def initial_guess(model: Circuit, f: np.ndarray, z: np.ndarray, features: SpectrumFeatures | None = None,
                  *, start: _Start = FIRST) -> np.ndarray:
    """A parameter vector for ``model`` read off a checked spectrum (high to low frequency); see the module
    docstring for the rules."""
    features = features or spectrum_features(f, z)
    w = 2 * np.pi * f
    tail = max(-z.imag[-1], 1e-3 * abs(z[-1]))  # −Z'' at the lowest frequency
    groups = [t for t in model.terms if not isinstance(t, Element)]
    singles = [t for t in model.terms if isinstance(t, Element)]
    p = np.empty(len(model.parameters))
    for group, (omega, width) in zip(groups, _arcs_for(len(groups), features, f, z, start.split), strict=True):
        for element in group.elements():
            _guess_in_arc(p, element, omega * start.apex_scale, width, start.alpha)
    resistors = sum(e.kind == "R" for e in singles)
    for element in singles:
        r_series = max(features.R_HF_ohm, 1e-3 * np.abs(z).min()) / max(resistors, 1)
        _guess_in_series(p, element, r_series, w, z, tail, start.alpha)
    for e in model.elements:
        if e.kind in ("W", "Wo", "Ws"):
            p[e.start] *= start.diffusion_scale
    return p


def _arcs_for(n: int, features: SpectrumFeatures, f: np.ndarray, z: np.ndarray,
              split: Literal["even", "high", "low"]) -> list[tuple[float, float]]:
    """(ω_apex in rad/s, width in ohm) for ``n`` parallel groups, high to low frequency: the widest detected
    arcs; while groups outnumber arcs, the widest is split in two: halves at apex ×/÷ 3 ("even"), or a tenth of
    it as a shoulder at apex × 30 ("high") or ÷ 30 ("low")."""
    total = (features.R_tot_ohm if features.R_tot_ohm is not None else float(z.real[-1])) - features.R_HF_ohm
    total = max(total, 0.01 * np.abs(z).max())
    arcs = [(2 * np.pi * a.apex_Hz, max(a.width_ohm, 0.01 * total)) for a in features.arcs]
    if not arcs:
        arcs = [(2 * np.pi * float(np.sqrt(f[0] * f[-1])), total)]
    arcs = sorted(sorted(arcs, key=lambda a: -a[1])[:max(n, 1)], key=lambda a: -a[0])
    while len(arcs) < n:
        k = max(range(len(arcs)), key=lambda i: arcs[i][1])
        omega, width = arcs[k]
        arcs[k:k + 1] = {"even": [(omega * 3, width / 2), (omega / 3, width / 2)],
                         "high": [(omega * 30, width / 10), (omega, 0.9 * width)],
                         "low": [(omega, 0.9 * width), (omega / 30, width / 10)]}[split]
    return arcs[:n]


def _guess_in_arc(p: np.ndarray, e: Element, omega: float, width: float, alpha: float) -> None:
    """An element of a parallel group that makes an arc of ``width`` ohm with its apex at ``omega`` rad/s."""
    i = e.start
    if e.kind == "R":
        p[i] = width
    elif e.kind == "C":
        p[i] = 1 / (width * omega)
    elif e.kind == "CPE":
        p[i], p[i + 1] = 1 / (width * omega**alpha), alpha
    elif e.kind == "L":
        p[i] = 1e-3 * width / omega
    elif e.kind == "W":
        p[i] = 0.1 * width * np.sqrt(omega)
    else:  # Wo, Ws inside an arc (e.g. Randles R0-p(R1-Wo1,C1)): as large as the arc, relaxing below its apex
        p[i], p[i + 1] = width, 10 / omega


def _guess_in_series(p: np.ndarray, e: Element, r_series: float, w: np.ndarray, z: np.ndarray, tail: float,
                     alpha: float) -> None:
    """A top-level series element: R shares the high-frequency intercept, L explains Z'' > 0 at the top
    frequency, C, CPE and diffusion elements describe the low-frequency tail (−Z'' = ``tail`` at ω_min)."""
    i = e.start
    if e.kind == "R":
        p[i] = r_series
    elif e.kind == "L":
        p[i] = max(z.imag[0], 1e-3 * abs(z[0])) / w[0]
    elif e.kind == "C":
        p[i] = 1 / (w[-1] * tail)
    elif e.kind == "CPE":  # −Z'' = sin(απ/2)/(Q ω^α)
        p[i], p[i + 1] = np.sin(alpha * np.pi / 2) / (tail * w[-1] ** alpha), alpha
    elif e.kind == "W":
        p[i] = tail * np.sqrt(w[-1])
    else:  # Wo, Ws: a diffusion whose −Z'' at ω_min is the tail's, relaxing there
        p[i], p[i + 1] = 2 * tail, 1 / w[-1]


@dataclass(frozen=True, eq=False)
class EISResult:
    """One analysed spectrum: fit, resistances (ohm), area-specific resistances (ohm·cm²), conductivity and
    Lin-KK. ``to_dict()`` gives plain JSON types; see the module docstring for the definitions."""

    fit: FitResult
    kk: KKResult
    features: SpectrumFeatures
    area_cm2: float
    thickness_cm: float | None
    R_b_ohm: float
    R_tot_ohm: float | None
    R_tot_fit_ohm: float | None
    resistance_source: Literal["fit", "spectrum"]
    warnings: tuple[str, ...] = field(default=())
    spectrum: int | None = None  # its index in a table of several spectra
    circuit_requested: str | None = None  # the circuit asked for, when a lead inductance was added to it

    @property
    def R_int_ohm(self) -> float | None:
        return None if self.R_tot_ohm is None else self.R_tot_ohm - self.R_b_ohm

    @property
    def asr_per_interface_ohm_cm2(self) -> float | None:
        """R_int·A/2: one of the two identical interfaces of a symmetric cell."""
        return None if self.R_int_ohm is None else self.R_int_ohm * self.area_cm2 / 2

    @property
    def conductivity_S_cm(self) -> float | None:
        """σ = L/(R_b·A), S/cm, when the thickness is known."""
        if self.thickness_cm is None or self.R_b_ohm <= 0:
            return None
        return self.thickness_cm / (self.R_b_ohm * self.area_cm2)

    def to_dict(self) -> dict:
        sigma = self.conductivity_S_cm
        return {
            "spectrum": self.spectrum, "circuit": self.fit.circuit,
            "circuit_requested": self.circuit_requested or self.fit.circuit, "points": int(self.fit.frequency_Hz.size),
            "frequency_max_Hz": float(self.fit.frequency_Hz[0]), "frequency_min_Hz": float(self.fit.frequency_Hz[-1]),
            "area_cm2": self.area_cm2, "thickness_cm": self.thickness_cm,
            "R_HF_ohm": self.features.R_HF_ohm, "R_b_ohm": self.R_b_ohm, "R_tot_ohm": self.R_tot_ohm,
            "R_int_ohm": self.R_int_ohm, "R_tot_fit_ohm": self.R_tot_fit_ohm,
            "R_tot_spectrum_ohm": self.features.R_tot_ohm, "tail_start_Hz": self.features.tail_start_Hz,
            "resistance_source": self.resistance_source,
            "asr_cell_ohm_cm2": None if self.R_int_ohm is None else self.R_int_ohm * self.area_cm2,
            "asr_per_interface_ohm_cm2": self.asr_per_interface_ohm_cm2,
            "conductivity_S_cm": sigma, "conductivity_mS_cm": None if sigma is None else 1000 * sigma,
            "kk_pass": self.kk.passed, "kk": self.kk.to_dict(), "fit": self.fit.to_dict(),
            "warnings": list(self.warnings),
        }  # fmt: skip

    def headline(self) -> str:
        """One line for people (:func:`headline`)."""
        return headline(self.to_dict())

    def brief(self) -> str:
        """A few words for run lists (:func:`brief`)."""
        return brief(self.to_dict())


def headline(result: dict) -> str:
    """One line for people, from :meth:`EISResult.to_dict`: R_b, R_tot, ASR per interface, σ when known, KK."""
    parts = [f"R_b = {_ohms(result, 'R_b_ohm')}", f"R_tot = {_ohms(result, 'R_tot_ohm')}",
             f"ASR = {_ohms(result, 'asr_per_interface_ohm_cm2', 'Ω·cm²')} per interface"]
    if result.get("conductivity_mS_cm") is not None:
        parts.append(f"σ = {result['conductivity_mS_cm']:.3g} mS/cm")
    parts.append(_kk(result))
    return "; ".join(parts)


def brief(result: dict) -> str:
    """A few words for run lists, from :meth:`EISResult.to_dict`: 'R_b 30.1 Ω, R_tot 70.2 Ω, KK pass'."""
    return f"R_b {_ohms(result, 'R_b_ohm')}, R_tot {_ohms(result, 'R_tot_ohm')}, {_kk(result)}"


def _ohms(result: dict, key: str, unit: str = "Ω") -> str:
    value = result.get(key)
    return "not found" if value is None else f"{value:.4g} {unit}"


def _kk(result: dict) -> str:
    return "KK " + ("pass" if result["kk_pass"] else "FAIL")


def analyze_spectrum(frequency_Hz: Sequence[float] | np.ndarray, impedance_ohm: Sequence[complex] | np.ndarray,
                     area_cm2: float, thickness_cm: float | None = None, circuit: str | None = None, *,
                     spectrum: int | None = None, lead_inductance: bool = True) -> EISResult:
    """Fit, R_b, R_tot, R_int, ASR per interface, σ and Lin-KK of one spectrum (f in Hz, Z in ohm with
    Z'' < 0 capacitive; electrode area in cm², electrolyte thickness in cm). ``circuit`` defaults to
    :data:`DEFAULT_CIRCUIT`; with ``lead_inductance`` a series inductance is added to a circuit without one when
    the highest-frequency points are inductive (see the module docstring). Raises ValueError for a bad spectrum,
    area, thickness or circuit."""
    if not area_cm2 > 0:
        raise ValueError(f"area_cm2 must be a positive electrode area in cm², got {area_cm2!r}")
    if thickness_cm is not None and not thickness_cm > 0:
        raise ValueError(f"thickness_cm must be a positive thickness in cm (or None), got {thickness_cm!r}")
    f, z = check_spectrum(frequency_Hz, impedance_ohm)
    features = spectrum_features(f, z)
    requested = circuit or DEFAULT_CIRCUIT
    inductive = _inductive_top(z, features.noise) if lead_inductance and not _has_inductor(requested) else 0
    fit = fit_circuit(f, z, f"{LEAD_INDUCTOR}-{requested}" if inductive else requested, features=features)
    kk = lin_kk(f, z)
    r_high, r_low = fit.resistances()
    r_b = r_high if r_high > 0 else features.R_HF_ohm
    r_tot_fit = r_low if np.isfinite(r_low) and r_low > 0 else None
    r_tot = r_tot_fit if r_tot_fit is not None else features.R_tot_ohm
    source = "fit" if r_tot_fit is not None else "spectrum"
    result = EISResult(fit, kk, features, float(area_cm2), None if thickness_cm is None else float(thickness_cm),
                       float(r_b), r_tot, r_tot_fit, source,
                       tuple(_lead_warning(fit, f, inductive) + _warnings(fit, kk, features, r_tot_fit, z)), spectrum,
                       requested if inductive else None)
    log.info("EIS %s: R_b %.4g ohm, R_tot %s ohm, KK %s", fit.circuit, r_b, r_tot,
             "pass" if kk.passed else "fail")
    return result


def _sign_flipped(z: np.ndarray) -> bool:
    """Most points inductive: the file more likely holds −Z'' than a cell that is mostly an inductor."""
    return bool(np.mean(z.imag > 0) > 0.5)


def _has_inductor(circuit: str) -> bool:
    return any(e.kind == "L" for e in parse_circuit(circuit).elements)


def _inductive_top(z: np.ndarray, noise: float) -> int:
    """How many points from the top frequency down are inductive (Z'' > 0); 0 when the top point's Z'' is within
    INDUCTIVE_NOISE × the scatter of |Z| of zero, or when the imaginary part looks sign-flipped."""
    if _sign_flipped(z) or z.imag[0] <= INDUCTIVE_NOISE * noise * abs(z[0]):
        return 0
    return int(np.argmax(z.imag <= 0)) if (z.imag <= 0).any() else z.size


def _lead_warning(fit: FitResult, f: np.ndarray, inductive: int) -> list[str]:
    if not inductive:
        return []
    inductance_uH = fit.parameters[f"{LEAD_INDUCTOR}_H"] * 1e6
    return [f"the {inductive} highest-frequency points ({f[inductive - 1]:.3g} Hz and above) are inductive (Z'' > 0, "
            f"from the leads): fitted with a series inductance, circuit {fit.circuit} ({LEAD_INDUCTOR} = "
            f"{inductance_uH:.3g} µH); put an L in the circuit yourself to choose where it goes"]


def _warnings(fit: FitResult, kk: KKResult, features: SpectrumFeatures, r_tot_fit: float | None,
              z: np.ndarray) -> list[str]:
    notes = []
    if _sign_flipped(z):
        notes.append("most points have Z'' > 0: if the file holds −Z'' (as BioLogic exports it), negate that column")
    noise = max(kk.relative_rmse, RESOLVED)
    if not fit.converged or fit.relative_rmse > min(POOR_FIT, NOISE_FLAG * noise):
        notes.append(f"the circuit fits poorly: relative RMS residual {fit.relative_rmse:.2%} of |Z|, "
                     f"{fit.relative_rmse / noise:.1f} × the spectrum's noise ({noise:.2%} of |Z|, the RMS of the "
                     "Lin-KK residuals); the circuit misses a feature of the data, try another circuit")
    if features.note:
        notes.append(features.note)
    elif r_tot_fit is not None and abs(r_tot_fit - features.R_tot_ohm) > DISAGREE * r_tot_fit:
        notes.append(f"R_tot from the fit ({r_tot_fit:.4g} ohm) and read off the spectrum "
                     f"({features.R_tot_ohm:.4g} ohm) differ by more than {DISAGREE:.0%}")
    if not kk.passed:
        notes.append(f"Kramers–Kronig check failed (largest residual {kk.max_abs_residual:.1%}): the cell may have "
                     "changed during the sweep, or the measurement is non-linear or noisy")
    return notes


def analyze_eis(df: pd.DataFrame, area_cm2: float, thickness_cm: float | None = None, circuit: str | None = None,
                *, spectrum: int | None = None) -> EISResult:
    """:func:`analyze_spectrum` of a table with BDF columns ``Frequency / Hz``, ``Real Impedance / ohm`` and
    ``Imaginary Impedance / ohm``. A table of several spectra keyed by ``Spectrum Index / 1`` (the store's
    ``spectra.csv``) or ``Spectrum / 1`` gives the one whose key is ``spectrum`` (default: the last)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"need a pandas DataFrame with columns {FREQUENCY!r}, {REAL!r}, {IMAGINARY!r}, "
                        f"got {type(df).__name__}")
    _require_columns(df, "the table")
    df, spectrum = _one_spectrum(df, spectrum)
    f = _numbers(df, FREQUENCY)
    z = _numbers(df, REAL) + 1j * _numbers(df, IMAGINARY)
    return analyze_spectrum(f, z, area_cm2, thickness_cm, circuit, spectrum=spectrum)


@dataclass(frozen=True)
class SpectrumAnalysis:
    """An EIS procedure's analysis of its stored spectra, declared once (``procedure.analysis()``) and used by
    re-analysis and for the equivalent ``labctl analyze eis`` command: the last spectrum, fitted as live."""

    area_cm2: float
    thickness_cm: float | None
    circuit: str
    kind = "eis"  # the `labctl analyze` command
    source = SPECTRA  # the run-folder file it reads

    def analyze(self, path: Path) -> EISResult:
        return analyze_eis(load_spectrum_csv(path), self.area_cm2, thickness_cm=self.thickness_cm,
                           circuit=self.circuit)

    def command(self, path: Path, result: EISResult) -> str:
        """The command that gives ``result`` again; ``--spectrum`` names it when the file holds several (without it
        the command fits them all)."""
        words = [f"labctl analyze eis {path} --area {self.area_cm2:.6g} --circuit '{self.circuit}'"]
        if result.spectrum is not None:
            words.append(f"--spectrum {result.spectrum}")
        if self.thickness_cm:
            words.append(f"--thickness {self.thickness_cm:g}")
        return " ".join(words)


def load_spectrum_csv(path: str | Path) -> pd.DataFrame:
    """Read a spectrum CSV with BDF impedance columns (one spectrum, or several keyed by a spectrum column)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; give a CSV with columns {FREQUENCY!r}, {REAL!r} and "
                                f"{IMAGINARY!r}")
    try:
        df = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path} is not a readable CSV file ({e}); export the spectrum as CSV with columns "
                         f"{FREQUENCY!r}, {REAL!r} and {IMAGINARY!r}") from None
    df.columns = [str(c).strip() for c in df.columns]
    _require_columns(df, str(path))
    return df


def _require_columns(df: pd.DataFrame, where: str) -> None:
    missing = [c for c in (FREQUENCY, REAL, IMAGINARY) if c not in df.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in list(df.columns)[:8]) or "none"
        raise ValueError(f"{where} has no column {missing[0]!r}; a spectrum needs {FREQUENCY!r}, {REAL!r} and "
                         f"{IMAGINARY!r} (Z'' negative for capacitive arcs); found: {found}")


def _one_spectrum(df: pd.DataFrame, spectrum: int | None) -> tuple[pd.DataFrame, int | None]:
    key = next((k for k in SPECTRUM_KEYS if k in df.columns), None)
    if key is None:
        if spectrum is not None:
            raise ValueError(f"spectrum={spectrum} asked for, but the table has no {SPECTRUM_KEYS[0]!r} or "
                             f"{SPECTRUM_KEYS[1]!r} column; leave spectrum out for a table of one spectrum")
        return df, None
    keys = pd.to_numeric(df[key], errors="coerce")
    if keys.isna().any():
        i = int(np.flatnonzero(keys.isna())[0])
        raise ValueError(f"column {key!r} row {i} holds {df[key].iloc[i]!r}, not a spectrum number; fix that row")
    chosen = int(keys.iloc[-1]) if spectrum is None else int(spectrum)
    rows = df[keys == chosen]
    if rows.empty:
        raise ValueError(f"no spectrum {chosen} in column {key!r}; the table holds "
                         f"{', '.join(str(int(k)) for k in pd.unique(keys))}")
    return rows, chosen


def _numbers(df: pd.DataFrame, name: str) -> np.ndarray:
    values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & df[name].notna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"column {name!r} row {df.index[i]} holds {df[name].iloc[i]!r}, not a number; fix or "
                         "remove that row")
    return values
