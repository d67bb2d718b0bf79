"""Fit time per 61-point spectrum: labctl's fitter against impedance.py on the same noisy spectra, in one run.

Each spectrum is a symmetric cell drawn around science.md §3.2's example (R_b 50 Ω, R_int 27 Ω, Q 2e-6, α 0.85,
A_W 5, each varied by a random factor), 61 points from 2 MHz to 2 Hz with 0.5 % Gaussian noise on Re and Im.
labctl starts from its generic guess read off the data; impedance.py 1.7.1 (``CustomCircuit.fit`` with
``weight_by_modulus=True``, the same objective) is given the true parameters as its initial guess. Printed: mean
ms per fit for each, the speed ratio (goal >= 10x), the largest relative difference between the two parameter
sets (same answers), and in how many spectra labctl's weighted sum of squares is not above impedance.py's (where
the two differ, it is impedance.py's finite-difference fit that stopped short of the minimum).

    python benchmarks/eis_fit.py [--spectra 50] [--seed 0] [--circuits one-arc two-arcs inductance]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from impedance.models.circuits import CustomCircuit

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.eis import fit_circuit

CIRCUITS = {
    "one-arc": ("R0-p(R1,CPE1)-W1", [50.0, 27.0, 2e-6, 0.85, 5.0]),
    "two-arcs": ("R0-p(R1,CPE1)-p(R2,CPE2)-W1", [50.0, 30.0, 2e-7, 0.9, 27.0, 2.2e-5, 0.85, 5.0]),
    "inductance": ("L0-R0-p(R1,CPE1)-W1", [2e-7, 50.0, 27.0, 2e-6, 0.85, 5.0]),
}
FREQUENCIES = np.logspace(np.log10(2e6), np.log10(2.0), 61)


def spectra(circuit: str, typical: list[float], count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(true parameters, Z) pairs: each parameter times 10^U(−0.3, 0.3), α kept in 0.7–0.98."""
    rng = np.random.default_rng(seed)
    model = parse_circuit(circuit)
    out = []
    for _ in range(count):
        truth = np.array(typical) * 10 ** rng.uniform(-0.3, 0.3, len(typical))
        for i, spec in enumerate(model.parameters):
            if spec.fraction:
                truth[i] = rng.uniform(0.7, 0.98)
        z = model.impedance(FREQUENCIES, truth)
        z = z.real * (1 + 0.005 * rng.standard_normal(z.size)) + 1j * z.imag * (1 + 0.005 * rng.standard_normal(z.size))
        out.append((truth, z))
    return out


def run(circuit: str, cases: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float, int, float]:
    """(labctl ms per fit, impedance.py ms per fit, max relative parameter difference, spectra where labctl's
    objective is not above impedance.py's, labctl's max |Δα| to the truth)."""
    fit_circuit(FREQUENCIES, cases[0][1], circuit)  # warm up: parse, imports
    start = time.perf_counter()
    ours = [fit_circuit(FREQUENCIES, z, circuit).values for _, z in cases]
    labctl_ms = 1000 * (time.perf_counter() - start) / len(cases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        theirs = [CustomCircuit(circuit, initial_guess=list(truth)).fit(FREQUENCIES, z, weight_by_modulus=True)
                  .parameters_ for truth, z in cases]
        impedance_ms = 1000 * (time.perf_counter() - start) / len(cases)
    difference = max(float(np.max(np.abs(a / b - 1))) for a, b in zip(ours, theirs, strict=True))
    not_worse = sum(objective(circuit, a, z) <= objective(circuit, b, z) * (1 + 1e-9)
                    for a, b, (_, z) in zip(ours, theirs, cases, strict=True))
    alpha = np.array([s.fraction for s in parse_circuit(circuit).parameters])
    alpha_error = max(float(np.max(np.abs(a[alpha] - t[alpha]))) for a, (t, _) in zip(ours, cases, strict=True))
    return labctl_ms, impedance_ms, difference, not_worse, alpha_error


def objective(circuit: str, parameters: np.ndarray, z: np.ndarray) -> float:
    """The modulus-weighted sum of squares both fitters minimise."""
    d = (parse_circuit(circuit).impedance(FREQUENCIES, parameters) - z) / np.abs(z)
    return float(np.sum(d.real**2 + d.imag**2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spectra", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--circuits", nargs="+", choices=list(CIRCUITS), default=["one-arc"])
    args = parser.parse_args()
    print(f"{args.spectra} spectra per circuit, 61 points, 2 MHz to 2 Hz, 0.5 % noise")
    print(f"{'circuit':30} {'labctl ms':>9} {'impedance.py ms':>15} {'speed-up':>8} {'max rel diff':>12} "
          f"{'SSR not worse':>13} {'max |Δα| to truth':>17}")
    for name in args.circuits:
        circuit, typical = CIRCUITS[name]
        ours, theirs, difference, not_worse, alpha_error = run(circuit, spectra(circuit, typical, args.spectra,
                                                                                args.seed))
        print(f"{circuit:30} {ours:9.2f} {theirs:15.1f} {theirs / ours:7.1f}x {difference:12.2e} "
              f"{not_worse:>8}/{args.spectra:<4} {alpha_error:17.4f}")
    print("goal: >= 10x faster with the same answers")


if __name__ == "__main__":
    main()
