"""What procedures ask of a bench: roles, not brands.

A procedure asks for "a cycler channel" and "a clock"; the bench config says which instrument plays each
role. Drivers satisfy these protocols without inheriting from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CyclerReading:
    """One reading of a cycler channel, in SI units and BDF signs (positive current charges)."""

    test_time_s: float  # the instrument's test time
    step_time_s: float
    voltage_V: float
    current_A: float
    charge_capacity_Ah: float  # cumulative over the test, as the instrument reports it
    discharge_capacity_Ah: float
    status: str  # the instrument's own word for its state, e.g. "Charge", "Rest", "Unsafe"
    segment_active: bool  # the last commanded segment is still running
    end_reason: str | None = None  # why the last segment ended: "time", "charge", "voltage_high", "voltage_low"


@runtime_checkable
class CyclerChannel(Protocol):
    """A channel that can pass a constant current under limits, rest, and report readings."""

    def identity(self) -> dict[str, str]:
        """Make, model, serial number, channel: recorded in every run's metadata."""
        ...

    def begin(self, test_name: str) -> None:
        """Take the channel for a test and leave it at rest (zero current), ready for segments."""
        ...

    def apply_current(
        self,
        current_A: float,
        *,
        max_voltage_V: float,
        min_voltage_V: float,
        until_time_s: float | None = None,
        until_charge_Ah: float | None = None,
    ) -> None:
        """Start a constant-current segment that the instrument itself ends at the first limit reached."""
        ...

    def rest(self) -> None:
        """End any segment now: zero current."""
        ...

    def read(self) -> CyclerReading: ...

    def end(self) -> None:
        """Stop the test and leave the channel idle at open circuit. Safe to call more than once."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Procedures wait through a clock: wall time on hardware, virtual bench time on a simulated bench."""

    def wait(self, seconds: float, *, stop_at_event: bool = True) -> None:
        """Let ``seconds`` of test time pass. A simulated bench returns early at an instrument event (a step
        end) unless ``stop_at_event`` is False, as a fast poll on hardware would see it at once."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ImpedanceAnalyzer(Protocol):
    """An impedance analyzer measuring one frequency point at a time (software-stepped sweeps)."""

    def identity(self) -> dict[str, str]: ...

    def configure(self, *, amplitude_V: float, dc_bias_V: float = 0.0, integration_time_s: float = 0.1,
                  delay_s: float = 0.0) -> None:
        """Reset the analyzer and put it in a known state for a potentiostatic spectrum (amplitude in V rms)."""
        ...

    def point_duration_s(self, frequency_Hz: float) -> float:
        """How long the analyzer needs for one point at this frequency (delay plus integration), s."""
        ...

    def trigger(self, frequency_Hz: float) -> None:
        """Set the generator frequency and start a single measurement."""
        ...

    def read(self, frequency_Hz: float) -> complex:
        """The impedance of the point triggered at ``frequency_Hz`` (ohm; Z = Z' + jZ''), re-reading stale
        results of an earlier point, never returning them."""
        ...

    def close(self) -> None: ...
