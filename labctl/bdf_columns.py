"""Column names of labctl's data files, in one place: Battery Data Format (BDF) labels, ``Quantity / unit``.

Time-series names are BDF's (the batterydf spec; the tests check them against it). BDF has no impedance columns yet:
spectra use the same ``Quantity / unit`` form, and the store keys each spectrum of a run by ``SPECTRUM_INDEX``.
Tests keep their own literals: they are the independent check of the file format.
"""

from __future__ import annotations

TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
CURRENT = "Current / A"
UNIX_TIME = "Unix Time / s"
CYCLE = "Cycle Count / 1"
STEP = "Step Count / 1"
CHARGE_CAPACITY = "Charging Capacity / Ah"
DISCHARGE_CAPACITY = "Discharging Capacity / Ah"
REQUIRED = (TIME, VOLTAGE, CURRENT)  # what BDF requires of every time series
MACHINE_LABELS = {"test_time_second": TIME, "voltage_volt": VOLTAGE, "current_ampere": CURRENT,
                  "step_count": STEP, "cycle_count": CYCLE}  # BDF machine-readable names of the same columns
COUNTER_MACHINE_LABELS = {"charging_capacity_ah": CHARGE_CAPACITY, "discharging_capacity_ah": DISCHARGE_CAPACITY}

FREQUENCY = "Frequency / Hz"
REAL_IMPEDANCE = "Real Impedance / ohm"
IMAGINARY_IMPEDANCE = "Imaginary Impedance / ohm"  # negative for capacitive arcs
SPECTRUM_INDEX = "Spectrum Index / 1"  # the store's spectra table
SPECTRUM = "Spectrum / 1"  # the plain name other spectrum tables use

# A deposition run's plain log (no BDF: no current or voltage); FREQUENCY is the crystal's there
LAYER = "Layer / 1"
RATE = "Rate / A/s"
THICKNESS = "Thickness / nm"
CRYSTAL_LIFE = "Crystal Life / %"
