"""Circuit strings in impedance.py's syntax: parsing, Z(ω) and dZ/dp, checked against impedance.py 1.7.1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from impedance.models.circuits import CustomCircuit

from labctl.analysis.circuits import parse_circuit

F = np.logspace(7, -3, 41)  # Hz, wider than any sweep
CIRCUITS = {  # every element type, series, parallel and nesting
    "R0-p(R1,CPE1)-W1": [50, 27, 2e-6, 0.85, 5],
    "L0-R0-p(R1,CPE1)-p(R2,CPE2)-W1": [2e-7, 50, 30, 5e-8, 0.9, 27, 2e-6, 0.85, 5],
    "R0-p(R1-Wo1,C1)": [10, 20, 30, 1.5, 1e-6],
    "R0-p(R1-Ws1,C1)-C2": [10, 20, 30, 1.5, 1e-6, 1e-3],
    "p(R1,p(C1,R2-CPE_1),L1)-Wo_2": [10, 1e-6, 5, 1e-4, 0.7, 1e-3, 40, 1000.0],
    "R0": [3.3],
}


def impedance_py(circuit: str, parameters: list[float]) -> CustomCircuit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Simulating circuit based on initial parameters"
        return CustomCircuit(circuit, initial_guess=list(parameters))


@pytest.mark.parametrize("circuit", CIRCUITS)
def test_impedance_matches_impedance_py(circuit):
    parameters = CIRCUITS[circuit]
    oracle = impedance_py(circuit, parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = oracle.predict(F, use_initial=True)
    z = parse_circuit(circuit).impedance(F, parameters)
    np.testing.assert_allclose(z, expected, rtol=1e-12)
    assert [p.impedance_name for p in parse_circuit(circuit).parameters] == oracle.get_param_names()[0]


@pytest.mark.parametrize("circuit", CIRCUITS)
def test_analytic_jacobian_matches_central_differences(circuit):
    model = parse_circuit(circuit)
    p = np.array(CIRCUITS[circuit], dtype=float)
    z, jac = model.impedance_and_jacobian(F, p)
    np.testing.assert_allclose(z, model.impedance(F, p), rtol=1e-14)
    assert jac.shape == (p.size, F.size)
    rounding = 1e-9 * np.abs(z).max()  # what cancellation leaves of a difference quotient, per unit of p
    for i in range(p.size):
        step = 1e-5 * p[i]
        up, down = p.copy(), p.copy()
        up[i] += step
        down[i] -= step
        numeric = (model.impedance(F, up) - model.impedance(F, down)) / (2 * step)
        np.testing.assert_allclose(jac[i], numeric, rtol=1e-6, atol=rounding / p[i], err_msg=f"d/d{model.keys[i]}")


def test_keys_name_parameters_with_units():
    assert parse_circuit("L0-R0-p(R1,CPE1)-p(C2,Wo2)-Ws3-W1").keys == (
        "L0_H", "R0_ohm", "R1_ohm", "CPE1_Q", "CPE1_alpha", "C2_F", "Wo2_Z0_ohm", "Wo2_tau_s", "Ws3_Z0_ohm",
        "Ws3_tau_s", "W1_A_W")  # fmt: skip


def test_finite_warburgs_stay_finite_where_tanh_overflows():
    for circuit in ("Wo1", "Ws1"):
        z, jac = parse_circuit(circuit).impedance_and_jacobian([1e7, 1.0, 1e-6], [10.0, 1e4])
        assert np.isfinite(z).all() and np.isfinite(jac).all()
    # far above 1/τ both behave as a semi-infinite Warburg: Z0/√(jωτ)
    w = 2 * np.pi * 1e7
    expected = 10.0 / np.sqrt(1j * w * 1e4)
    assert parse_circuit("Wo1").impedance([1e7], [10.0, 1e4])[0] == pytest.approx(expected, rel=1e-9)


def test_parse_once_then_reuse():
    assert parse_circuit("R0-p(R1,CPE1)-W1") is parse_circuit("R0-p(R1,CPE1)-W1")
    assert parse_circuit(" R0 - p( R1 , CPE1 ) - W1 ").keys == parse_circuit("R0-p(R1,CPE1)-W1").keys


@pytest.mark.parametrize(("text", "message"), [
    ("R0-p(R1,CPE1", r"missing '\)' at position 12"),
    ("R0-p(R1)", "p\\(...\\) with a single branch at position 7"),
    ("R0--R1", "expected an element, found '-' at position 3"),
    ("R0-", "found the end of the string at position 3"),
    ("R0,R1", "unexpected ',' at position 2"),
    ("R0-p(R1,CPE1))", r"unexpected '\)' at position 13"),
    ("R0-X1", "unknown element 'X' \\(X1\\) at position 3; known elements: R, C, L, CPE, W, Wo, Ws"),
    ("cpe1-R0", "unknown element 'cpe' .* did you mean 'CPE'"),
    ("R0-p(R1,CPE1)-R1", "element name 'R1' at position 14 is used twice"),
    ("", "non-empty string"),
])  # fmt: skip
def test_malformed_circuit_is_a_value_error_naming_the_position(text, message):
    with pytest.raises(ValueError, match=message):
        parse_circuit(text)


def test_wrong_number_of_parameters_names_them():
    with pytest.raises(ValueError, match="takes 5 parameters .*R0_ohm, R1_ohm, CPE1_Q, CPE1_alpha, W1_A_W.* got 4"):
        parse_circuit("R0-p(R1,CPE1)-W1").impedance(F, [1, 2, 3, 4])


def test_resistances_are_the_limits_without_inductance_and_diffusion():
    two_arcs = parse_circuit("L0-R0-p(R1,CPE1)-p(R2,CPE2)-W1")
    assert two_arcs.resistances(CIRCUITS["L0-R0-p(R1,CPE1)-p(R2,CPE2)-W1"]) == (50, 50 + 30 + 27)
    assert parse_circuit("R0-p(R1,R2)-C1").resistances([5, 10, 40, 1e-3]) == (13, np.inf)  # blocking
    assert parse_circuit("R0-p(R1-Wo1,C1)").resistances([10, 20, 30, 1.5, 1e-6]) == (10, 30)


def test_interchangeable_arcs_are_put_in_frequency_order():
    model = parse_circuit("R0-p(R1,CPE1)-p(R2,CPE2)-W1")
    high, low = [30, 2e-7, 0.9], [27, 2.2e-5, 0.85]
    swapped = [50, *low, *high, 5]
    ordered = model.in_frequency_order(swapped)
    np.testing.assert_array_equal(ordered, [50, *high, *low, 5])
    np.testing.assert_allclose(model.impedance(F, ordered), model.impedance(F, swapped), rtol=1e-14)
