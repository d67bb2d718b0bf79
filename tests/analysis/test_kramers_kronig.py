"""Lin-KK against impedance.py 1.7.1's ``linKK``, pass on valid spectra and fail on a drifting cell."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from impedance.models.circuits import elements
from impedance.validation import linKK

from labctl.analysis.kramers_kronig import lin_kk


@pytest.fixture
def oracle(monkeypatch):
    """impedance.py's linKK: on NumPy 2 its eval() needs ``np`` among the circuit elements (issue #296, fixed
    after 1.7.1); it also prints progress, which is swallowed."""
    monkeypatch.setitem(elements.circuit_elements, "np", np)

    def run(f, z, fit_type, **options):
        with contextlib.redirect_stdout(io.StringIO()):
            return linKK(f, z, fit_type=fit_type, add_cap=True, **options)
    return run


@pytest.mark.parametrize("fit_type", ["complex", "real", "imag"])
@pytest.mark.parametrize(("name", "window", "noise"), [
    ("one arc", "1MHz-0.1Hz", 0.0), ("two arcs", "2MHz-2Hz", 0.0), ("inductance", "1MHz-0.1Hz", 0.005),
    ("one arc", "2MHz-2Hz", 0.005),
])  # fmt: skip
def test_schoenleber_algorithm_matches_impedance_py(spectra, oracle, name, window, noise, fit_type):
    f, z = spectra.named(name, window, noise)
    m, mu, z_fit, real, imag = oracle(f, z, fit_type)
    result = lin_kk(f, z, fit_type=fit_type, min_rc_per_decade=0)  # the original algorithm: M from 1
    assert result.n_rc == m
    assert result.mu == pytest.approx(mu, abs=1e-3)  # the R_k of a large M are ill-conditioned; μ sums them
    np.testing.assert_allclose(result.residuals_real, real, atol=1e-6)
    np.testing.assert_allclose(result.residuals_imag, imag, atol=1e-6)
    np.testing.assert_allclose(result.impedance_fit_ohm, z_fit, rtol=1e-6)


@pytest.mark.parametrize(("name", "window"), [(n, w) for n in ("one arc", "two arcs", "inductance")
                                              for w in ("1MHz-0.1Hz", "2MHz-2Hz")])
@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_valid_spectra_pass(spectra, oracle, name, window, noise):
    f, z = spectra.named(name, window, noise)
    result = lin_kk(f, z)
    assert result.passed, (result.n_rc, result.max_abs_residual, result.fraction_within)
    assert result.n_rc >= 1.5 * np.log10(f[0] / f[-1]) and result.mu <= 0.85
    _, mu, _, real, imag = oracle(f, z, "complex", c=None, max_M=result.n_rc)  # impedance.py at the same M
    assert result.mu == pytest.approx(mu, abs=1e-3)
    np.testing.assert_allclose(result.residuals_real, real, atol=1e-6)
    np.testing.assert_allclose(result.residuals_imag, imag, atol=1e-6)


def test_the_floor_on_m_avoids_stopping_on_an_underfit(spectra):
    """The original algorithm meets μ <= 0.85 at M = 7 on a noise-free single-arc spectrum over 7 decades, with
    residuals of 5 %: a valid spectrum would fail. From 1.5 elements per decade it does not."""
    f, z = spectra.named("one arc", "1MHz-0.1Hz")
    original = lin_kk(f, z, min_rc_per_decade=0)
    assert original.n_rc == 7 and original.max_abs_residual > 0.04 and not original.passed
    result = lin_kk(f, z)
    assert result.passed and result.max_abs_residual < 1e-3


@pytest.mark.parametrize("window", ["1MHz-0.1Hz", "2MHz-2Hz"])
@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_a_cell_changing_during_the_sweep_fails(spectra, window, noise):
    """Interface resistance doubling while the sweep runs (contact loss): most of the time is spent at the
    lowest frequencies, so the largest residuals are there."""
    f, z = spectra.drifting(1.0, window, noise)
    result = lin_kk(f, z)
    assert not result.passed
    worst = np.argmax(np.maximum(np.abs(result.residuals_real), np.abs(result.residuals_imag)))
    assert f[worst] < 10
    assert lin_kk(*spectra.drifting(0.0, window, noise)).passed  # the same cell standing still


def test_result_to_dict_is_json(spectra):
    f, z = spectra.named("one arc")
    result = lin_kk(f, z).to_dict()
    assert result["passed"] is True and "90%" in result["rule"]
    assert len(result["frequency_Hz"]) == len(result["residuals_real"]) == len(result["residuals_imag"]) == 61
    json.dumps(result, allow_nan=False)


def test_bad_arguments(spectra):
    f, z = spectra.named("one arc")
    with pytest.raises(ValueError, match="fit_type must be 'complex', 'real' or 'imag'"):
        lin_kk(f, z, fit_type="both")
    with pytest.raises(ValueError, match="need 0 < c <= 1"):
        lin_kk(f, z, c=0)
    with pytest.raises(ValueError, match="not monotonic"):
        lin_kk(np.r_[f[:30], f[31], f[30], f[32:]], z)
