"""Lin-KK verdicts against pyimpspec 5.1's KK test as an independent oracle.

pyimpspec chooses its number of RC elements its own way (Plank et al. 2022, Yrjänä and Bobacka 2024) and also
extends the range of time constants; it gives no verdict, so the same pass rule is applied to its residuals. Its
estimated noise level is compared with labctl's RMS residual. The impedance representation is tested only (not
the admittance one), which halves its run time (a few seconds per spectrum).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pyimpspec import DataSet, perform_kramers_kronig_test

from labctl.analysis.circuits import parse_circuit
from labctl.analysis.kramers_kronig import FRACTION, HARD_LIMIT, WITHIN, lin_kk

ISSUE_FREQUENCIES = np.logspace(6, -1, 70)  # Hz: the issue's 70 points from 1 MHz to 0.1 Hz


def pyimpspec_verdict(f: np.ndarray, z: np.ndarray) -> tuple[bool, float]:
    """(pass by labctl's rule applied to pyimpspec's residuals, pyimpspec's estimated noise as a fraction)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = perform_kramers_kronig_test(DataSet(f, z), admittance=False)
    _, real_percent, imag_percent = result.get_residuals_data()
    parts = np.abs(np.concatenate([real_percent, imag_percent])) / 100
    passed = np.mean(parts <= WITHIN) >= FRACTION and parts.max() <= HARD_LIMIT
    return bool(passed), result.get_estimated_percent_noise() / 100


def ideal(circuit: str, parameters: list[float], spectra, noise: float) -> tuple[np.ndarray, np.ndarray]:
    z = parse_circuit(circuit).impedance(ISSUE_FREQUENCIES, parameters)
    return ISSUE_FREQUENCIES, spectra.noisy(z, noise, seed=1)


def with_bad_point(spectra) -> tuple[np.ndarray, np.ndarray]:
    f, z = spectra.named("one arc", "1MHz-0.1Hz", 0.003)
    z = z.copy()
    z[40] *= 1.1
    return f, z


CASES = {  # name: (spectrum maker, KK-consistent)
    "R0-p(R1,C1)": (lambda s: ideal("R0-p(R1,C1)", [50.0, 27.0, 2e-6], s, 0.0), True),
    "R0-p(R1,C1)-W1": (lambda s: ideal("R0-p(R1,C1)-W1", [50.0, 27.0, 2e-6, 5.0], s, 0.0), True),
    "R0-p(R1,C1) noisy": (lambda s: ideal("R0-p(R1,C1)", [50.0, 27.0, 2e-6], s, 0.005), True),
    "drift": (lambda s: s.drifting(1.0, "1MHz-0.1Hz", 0.003), False),
    "bad point": (with_bad_point, False),
}


@pytest.mark.parametrize("name", CASES)
def test_verdict_agrees_with_pyimpspec(spectra, name):
    make, consistent = CASES[name]
    f, z = make(spectra)
    ours = lin_kk(f, z)
    theirs, noise = pyimpspec_verdict(f, z)
    assert ours.passed is theirs is consistent, (ours.n_rc, ours.max_abs_residual, noise)
    if consistent:  # both see the same noise floor: none (round-off) or the 0.5 % added
        assert ours.relative_rmse < max(2 * noise, 1e-3)
