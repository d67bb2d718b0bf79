"""What procedures ask of a bench: roles, not brands.

A procedure asks for "a cycler channel" and "a clock"; the bench config says which instrument plays each
role. Drivers satisfy these protocols without inheriting from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    # why the last segment ended: "time", "charge", "voltage_high", "voltage_low" (constant current) or "time",
    # "current_low" (constant voltage: |I| fell to until_current_A); None while it runs or when the status says why
    end_reason: str | None = None


class ResumeRefused(Exception):
    """A run cannot go on where it stopped; the message says why (the channel was used meanwhile, its test ended,
    the instrument's test time went backwards, the procedure cannot resume)."""


@runtime_checkable
class CyclerChannel(Protocol):
    """A channel that can pass a constant current or hold a constant voltage under limits, rest, and report
    readings."""

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

    def apply_voltage(
        self,
        voltage_V: float,
        *,
        max_current_A: float,
        until_time_s: float | None = None,
        until_current_A: float | None = None,
    ) -> None:
        """Start a constant-voltage segment: hold ``voltage_V`` with |I| clamped to ``max_current_A`` (the voltage
        sags while the clamp holds the current), until the instrument ends it at the first limit reached: step
        time ``until_time_s``, or |I| fallen to ``until_current_A`` (end reason "current_low"); None = no limit."""
        ...

    def resume(self, test_name: str, after_test_time_s: float) -> CyclerReading:
        """Take over the test ``test_name`` that a process which died left on the channel and put it at rest, to go
        on with it; returns the channel's reading from before the rest (is the segment still running, since when
        does it rest). ResumeRefused unless that test still runs there and its test time is at least ``after_test_time_s`` (the
        last stored reading's)."""
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

    def now(self) -> float:
        """Test time in s from an arbitrary origin (differences only): virtual time on a simulated bench."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ImpedanceAnalyzer(Protocol):
    """An instrument that measures impedance spectra: a Solartron 1260 steps one frequency at a time in software, a
    potentiostat such as the SP-200 sweeps a whole spectrum inside one technique. Procedures ask for a spectrum and
    never learn which."""

    max_frequency_Hz: float  # the highest frequency it measures
    galvanostatic: bool  # it can control the AC current (GEIS) as well as the voltage

    def identity(self) -> dict[str, str]: ...

    def configure(self, *, amplitude_V: float, dc_bias_V: float = 0.0, integration_time_s: float = 0.1,
                  delay_s: float = 0.0, at_open_circuit: bool = False, current_amplitude_A: float | None = None) -> None:
        """Put the analyzer in a known state for the next spectra: ``amplitude_V`` V rms around the DC bias
        ``dc_bias_V``. ``at_open_circuit``: the bias is the cell's own open-circuit voltage, which a potentiostat
        may hold as 0 V vs. its own reading of it. ``current_amplitude_A`` (A rms): a galvanostatic spectrum at zero
        DC current instead, where ``galvanostatic``; ValueError where not."""
        ...

    def sweep(self, frequencies: Sequence[float], clock: Clock) -> Iterator[tuple[float, complex]]:
        """Measure ``frequencies`` (log-spaced, in order), yielding each point (Hz, ohm; Z = Z' + jZ'') as it is
        measured, never a stale one; time passes through ``clock``. Closing the iterator early ends the measurement
        and leaves the cell at open circuit."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RateReading:
    """One reading of a quartz-crystal rate monitor's sensor, for the film programmed on it."""

    rate_A_s: float  # deposition rate at the substrate (tooling applied), Å/s
    thickness_nm: float  # film thickness at the substrate since the last zero
    frequency_Hz: float  # the crystal's resonance frequency; it falls as mass lands on the crystal
    crystal_life_pct: float  # what is left of the crystal's usable frequency range
    crystal_failed: bool  # the crystal no longer oscillates: rate and thickness mean nothing


@runtime_checkable
class RateMonitor(Protocol):
    """A quartz-crystal monitor: programmed with the film, zeroed, read while a layer grows, and (where its
    shutter relay is wired to the source shutter) opening and closing the shutter."""

    shutter_control: bool  # False: the operator opens and closes the shutter by hand

    def identity(self) -> dict[str, str]: ...

    def set_film(self, *, name: str, density_g_cm3: float, z_ratio: float, tooling_pct: float,
                 final_thickness_nm: float) -> None:
        """Program the film and make it active; the monitor closes its shutter at ``final_thickness_nm`` by
        itself (0: never)."""
        ...

    def zero(self) -> None:
        """Zero thickness, rate and the deposition timer."""
        ...

    def open_shutter(self) -> None:
        """Start the layer (only with ``shutter_control``)."""
        ...

    def close_shutter(self) -> None:
        """End the layer (only with ``shutter_control``)."""
        ...

    def read(self) -> RateReading: ...

    def close(self) -> None: ...
