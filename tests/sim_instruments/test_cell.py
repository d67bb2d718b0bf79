"""The virtual-cell interface (sim_instruments/cell.py): one declaration that the four cell families implement and
the emulated instruments ask for."""

from __future__ import annotations

import math

import pytest

from labctl.sim_instruments.catalog import KINDS, make_cell
from labctl.sim_instruments.cell import (
    HARD_SHORT_OHM,
    BiasedCell,
    HoldableCell,
    ImpedanceCell,
    SimulatedCell,
    find_preset,
)

ONE_PER_FAMILY = ("bare", "Cu", "NMC|Cu", "Cu|Cu")


class Resistor(SimulatedCell[float]):
    """The least a family supplies: its presets and four pieces of physics (here an ohmic resistor)."""

    @staticmethod
    def get_preset(name: str) -> float:
        return find_preset({"100 ohm": 100.0}, name, "resistor preset")

    def voltage(self, current_A: float) -> float:
        return current_A * self.preset

    def current_at(self, voltage_V: float) -> float:
        return voltage_V / self.preset

    def _impedance(self, omega: float) -> complex:
        return complex(self.preset)

    def _integrate(self, current_A: float, dt_s: float) -> None:
        self.evolved = (current_A, dt_s)


def test_every_catalogued_cell_is_a_simulated_cell_with_every_instruments_interface():
    families = set()
    for name, kind in KINDS.items():
        cell = make_cell(name, area_cm2=1.0)
        assert isinstance(cell, SimulatedCell) and isinstance(cell, kind.cls)
        assert isinstance(cell, HoldableCell) and isinstance(cell, BiasedCell) and isinstance(cell, ImpedanceCell)
        families.add(kind.cls)
    assert len(families) == 4


def test_a_family_gets_the_preset_lookup_area_bias_and_noise_from_the_base():
    cell = Resistor("100 OHM", area_cm2=2.0, seed=3)
    assert cell.preset == 100.0 and cell.area_cm2 == 2.0
    assert cell.hold_bias(1.0) == pytest.approx(0.01)  # the DC path uses the family's current_at
    cell.pass_bias(5.0)
    assert cell.evolved == (pytest.approx(0.01), 5.0)
    cell.hold_bias(None)
    cell.advance(0.002, 7.0)
    assert cell.evolved == (0.002, 2.0)  # the 5 s the analyzer integrated count once
    assert cell.measured_voltage(0.01) != cell.voltage(0.01)  # noise from the seeded stream
    assert abs(cell.measured_impedance(1e3) - 100.0) < 10.0


def test_the_noise_streams_are_the_seeds():
    a, b = Resistor("100 ohm", area_cm2=1.0, seed=5), Resistor("100 ohm", area_cm2=1.0, seed=5)
    assert [a.measured_voltage(0.01) for _ in range(3)] == [b.measured_voltage(0.01) for _ in range(3)]
    assert a.measured_impedance(10.0) == b.measured_impedance(10.0)


def test_an_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown resistor preset '1 kohm'; valid names: 100 ohm"):
        Resistor("1 kohm", area_cm2=1.0)


@pytest.mark.parametrize("area", [0.0, -1.0, math.nan])
@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_every_family_refuses_an_area_that_is_not_positive(name, area):
    with pytest.raises(ValueError, match="area_cm2 must be > 0"):
        make_cell(name, area_cm2=area)


@pytest.mark.parametrize("frequency", [0.0, -5.0, math.inf, math.nan])
@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_every_family_refuses_a_frequency_that_is_not_a_finite_positive_one(name, frequency):
    with pytest.raises(ValueError, match="frequency_Hz must be a finite frequency > 0"):
        make_cell(name, area_cm2=1.0).impedance(frequency)


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_every_family_refuses_negative_time(name):
    cell = make_cell(name, area_cm2=1.0)
    with pytest.raises(ValueError, match="dt_s must be >= 0"):
        cell.advance(1e-3, -1.0)
    cell.hold_bias(0.0)
    with pytest.raises(ValueError, match="dt_s must be >= 0"):
        cell.pass_bias(-1.0)


def test_hard_shorts_are_drawn_log_uniformly_from_the_fate_stream():
    low, high = HARD_SHORT_OHM
    draws = [Resistor("100 ohm", area_cm2=1.0, seed=s)._draw_short_resistance() for s in range(200)]
    assert all(low <= r <= high for r in draws)
    below_geometric_middle = sum(r < math.sqrt(low * high) for r in draws)
    assert 70 < below_geometric_middle < 130
    assert Resistor("100 ohm", area_cm2=1.0, seed=7)._draw_short_resistance() == \
        Resistor("100 ohm", area_cm2=1.0, seed=7)._draw_short_resistance()
