"""Every float parameter of every procedure refuses what is not a finite number, naming the parameter."""

from __future__ import annotations

import pytest
from pymeasure.experiment import FloatParameter

from labctl.procedures import PROCEDURES
from labctl.procedures.base import ParameterError, set_parameters

FLOATS = [(name, key) for name, cls in PROCEDURES.items()
          for key, p in cls().parameter_objects().items() if isinstance(p, FloatParameter)]


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf"])
@pytest.mark.parametrize(("procedure", "parameter"), FLOATS)
def test_a_float_parameter_refuses_what_is_not_a_finite_number(procedure, parameter, text):
    with pytest.raises(ParameterError, match=f"^{parameter}: ") as refused:
        set_parameters(PROCEDURES[procedure](), {parameter: text})
    assert refused.value.fields == (parameter,)
