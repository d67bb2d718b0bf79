"""The virtual-cell interface: what the emulated instruments ask of a cell, declared once.

Three instruments see a cell through three narrow protocols (structural, so a test may hand them any object
with the methods):
- :class:`ChannelCell`, what a cycler channel drives (sim_instruments/arbin_channel.py); a cell that can also be
  held at a constant voltage is a :class:`HoldableCell`.
- :class:`ImpedanceCell`, what the impedance analyzer measures (sim_instruments/si1260_server.py), and
  :class:`BiasedCell`, one whose DC path carries the analyzer's bias current (sim_instruments/dc_bias.py).

:class:`SimulatedCell` is the base of the four cell families (symmetric, anode-free, full and collector cells):
it implements all of them on top of four pieces of physics each family supplies (``voltage``, ``current_at``,
``_impedance`` and ``_integrate``) and holds what they share: the preset, the area, the seeded streams and the
hard-short draw. Physical constants the families share are here too.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar, runtime_checkable

from labctl.sim_instruments.dc_bias import BiasTerminals
from labctl.sim_instruments.measurement import Measured

__all__ = [
    "BiasedCell", "ChannelCell", "HoldableCell", "ImpedanceCell", "SimulatedCell", "VirtualCell", "find_preset",
]  # fmt: skip

TEMPERATURE_K = 298.15  # every simulated cell is at 25 °C: no Arrhenius terms yet
THERMAL_VOLTAGE_V = 8.314462618 * TEMPERATURE_K / 96485.33212  # RT/F
C_PER_mAh = 3.6
HARD_SHORT_OHM = (0.5, 5.0)  # a hard short's resistance, drawn log-uniformly from the seed
SHORT_INDUCTANCE_H = 5e-8  # the filament and leads: a short's spectrum is flat but for this
CPE_EXPONENT = 0.85  # the interfaces' constant-phase elements (science.md §4.5: 0.8-0.9)
WARBURG_TIME_S = 100.0  # finite-length Warburg: like a semi-infinite one above 0.1 Hz, finite at DC

PresetT = TypeVar("PresetT")


class ChannelCell(Protocol):
    """The physics a cycler channel drives. Current in A (positive charges), time in s, voltage in V."""

    def advance(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` seconds."""
        ...

    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage now, with ``current_A`` flowing."""
        ...

    def measured_voltage(self, current_A: float) -> float:
        """Terminal voltage as an instrument measures it (with noise)."""
        ...


@runtime_checkable
class HoldableCell(ChannelCell, Protocol):
    """A cell a channel can hold at a constant voltage; without ``current_at`` a constant-voltage step makes the
    channel Unsafe."""

    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, whose terminal voltage is ``voltage_V`` now."""
        ...


@runtime_checkable
class ImpedanceCell(Protocol):
    """What the analyzer measures: the cell's impedance now, with measurement noise (ohm, Z'' < 0 capacitive)."""

    def measured_impedance(self, frequency_Hz: float) -> complex: ...


@runtime_checkable
class BiasedCell(ImpedanceCell, Protocol):
    """A cell with a DC model: while the analyzer holds its bias, the cell carries the DC current it draws at that
    voltage and its state moves (sim_instruments/dc_bias.py). Cells without one are measured as if unbiased."""

    def hold_bias(self, voltage_V: float | None) -> float:
        """Hold the terminals at ``voltage_V`` (None: let go); the DC current this drives now, A."""
        ...

    def pass_bias(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass at the held bias (time a cycler channel integrated meanwhile counts once)."""
        ...


class VirtualCell(HoldableCell, BiasedCell, Protocol):
    """Everything the simulated bench asks of a cell: what :func:`~labctl.sim_instruments.catalog.make_cell`
    returns."""

    @property
    def area_cm2(self) -> float: ...

    def impedance(self, frequency_Hz: float) -> complex: ...


def find_preset(table: Mapping[str, PresetT], name: str, kind: str) -> PresetT:
    """The preset of ``table`` called ``name``, matched case-insensitively; ValueError naming the valid ones."""
    for key, preset in table.items():
        if key.lower() == name.strip().lower():
            return preset
    raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(table)}")


def require_positive(field: str, value: float) -> None:
    """ValueError naming ``field`` unless ``value`` is > 0 (NaN is not)."""
    if not value > 0:
        raise ValueError(f"{field} must be > 0, got {value}")


class SimulatedCell(BiasTerminals, Measured, ABC, Generic[PresetT]):
    """A simulated cell of ``preset`` (an instance, or a name in ``PRESETS``) and ``area_cm2``.

    ``seed`` fixes the cell's fate (the ``_events`` stream); measurement noise comes from separate streams
    (voltage: seed + 1, impedance: seed + 2), so reading the cell or measuring its spectrum never changes it.
    """

    def __init__(self, preset: str | PresetT, *, area_cm2: float, seed: int = 0) -> None:
        require_positive("area_cm2", area_cm2)
        self._preset: PresetT = self.get_preset(preset) if isinstance(preset, str) else preset
        self._area = area_cm2
        self._events = random.Random(seed)
        self._seed_noise(seed)

    @property
    def preset(self) -> PresetT:
        return self._preset

    @property
    def area_cm2(self) -> float:
        return self._area

    # -- the family's presets and physics --------------------------------------------------------------------
    @staticmethod
    @abstractmethod
    def get_preset(name: str) -> PresetT:
        """The family's preset called ``name`` (its presets module's ``get_preset``)."""

    @abstractmethod
    def voltage(self, current_A: float) -> float:
        """Noise-free terminal voltage, V, with ``current_A`` flowing now."""

    @abstractmethod
    def current_at(self, voltage_V: float) -> float:
        """Noise-free current, A, that holds the terminal voltage at ``voltage_V`` now."""

    @abstractmethod
    def _impedance(self, omega: float) -> complex:
        """Noise-free small-signal impedance at angular frequency ``omega`` (rad/s) now, ohm."""

    @abstractmethod
    def _integrate(self, current_A: float, dt_s: float) -> None:
        """Let ``current_A`` flow for ``dt_s`` >= 0 seconds (what :class:`~labctl.sim_instruments.dc_bias.
        BiasTerminals` calls, after checking the time)."""

    # -- shared ----------------------------------------------------------------------------------------------
    def impedance(self, frequency_Hz: float) -> complex:
        """Noise-free small-signal impedance at open circuit in the cell's present state, ohm (Z'' < 0 for
        capacitive arcs). Measuring it does not change the cell."""
        if not (math.isfinite(frequency_Hz) and frequency_Hz > 0):
            raise ValueError(f"frequency_Hz must be a finite frequency > 0, got {frequency_Hz!r}")
        return self._impedance(2 * math.pi * frequency_Hz)

    def _draw_short_resistance(self) -> float:
        """R_short of a hard short, ohm: log-uniform in ``HARD_SHORT_OHM``, from the cell's fate stream."""
        low, high = HARD_SHORT_OHM
        return math.exp(self._events.uniform(math.log(low), math.log(high)))


def short_impedance(r_short_ohm: float, omega: float) -> complex:
    """A short's impedance at ``omega`` rad/s: its resistance and ``SHORT_INDUCTANCE_H``, ohm."""
    return complex(r_short_ohm, omega * SHORT_INDUCTANCE_H)
