"""Full cells: cathode|SE|collector (anode-free) or cathode|SE|interlayer|Li (PROTOCOLS.md §2c, patent Example 2).

- ``fullcell`` (Wang et al., Adv. Mater. 2024, NMC811, 1C = 200 mA/g): ``activation_cycles`` (3) at
  ``activation_rate`` (0.1C) between ``lower_voltage`` and ``upper_voltage`` (2.8-4.3 V), then ``cycles`` (150)
  at ``cycling_rate`` (0.33C); CE = discharge/charge, capacity retention against the first cycle after
  activation, fade per cycle. ``depth_of_charge`` below 100 % caps each charge after activation at that share of
  the nominal capacity, leaving lithium in the cathode as a reservoir.
- ``fullcell-doc``: the same with ``depth_of_charge`` = 50 % (Wang: 100 mAh/g per charge, mean CE 99.96 % over
  256 cycles).
- ``rate``: after activation, ``cycles_per_rate`` (3) at each C-rate of ``rates`` (0.1, 0.2, 0.3, 0.5, 1, 2C; Wang:
  183, 155, 138, 115, 74, 30 mAh/g); the result is the mean discharge capacity per rate.
- ``fullcell-ccd`` (patent US 2025/0266506, Example 2): ``capacity`` (3 mAh/cm²) per charge; ``formation_cycles``
  (2) at ``formation_density`` (0.3 mA/cm²) both ways; then ``cycles_per_density`` (3) charges at each of
  ``charge_densities`` (0.6, 1.0, 1.5 mA/cm²) with discharge at ``discharge_density`` (0.6 mA/cm²) to
  ``lower_voltage`` (3 V); then ``cycles_after`` (30) at the last charge density. The charging CCD is the
  highest charge current density passed without a short (Ag|Mg: 1.5 mA/cm²; Ag alone: 0.6, shorted at cycle 6).

C-rates become currents through the cathode: ``cathode_mass`` (mg of active material) × ``specific_capacity``
(mAh/g at 1C), or ``areal_capacity`` (mAh/cm²) × the electrode area. Positive current charges. Every charge and
discharge is guarded in time at 1.5× its nominal duration. A charging short (the voltage falling during a
constant-current charge) ends the test with the channel at rest.
"""

from __future__ import annotations

from typing import Any

from pymeasure.experiment import FloatParameter, IntegerParameter, Parameter

from labctl.procedures.base import ParameterError
from labctl.procedures.ce import GUARD, CEProcedure
from labctl.units import SECONDS_PER_HOUR, charge_Ah, current_A

MAX_C_RATE = 20.0  # C: far above what a solid-state full cell takes; a larger number is a typo


def parse_numbers(name: str, text: str, maximum: float) -> list[float]:
    """'0.1, 0.2,0.5' → [0.1, 0.2, 0.5], all above 0 and at most ``maximum``, or a ParameterError naming ``name``."""
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ParameterError(f"{name}: {text!r} is not a comma-separated list of numbers, e.g. '0.1,0.2,0.5'") from None
    if not values or not all(0 < v <= maximum for v in values):  # NaN fails every comparison
        raise ParameterError(f"{name}: {text!r} needs at least one value, each above 0 and at most {maximum:g}")
    return values


class FullCellBase(CEProcedure):
    """Constant-current charge and discharge between voltage limits."""

    VARIANT = "fullcell"

    upper_voltage = FloatParameter("Upper voltage", units="V", minimum=0.1, maximum=5, default=4.3)
    lower_voltage = FloatParameter("Lower voltage", units="V", minimum=0.0, maximum=5, default=2.8)

    def check(self) -> None:
        if self.upper_voltage <= self.lower_voltage:
            raise ParameterError(f"upper_voltage: {self.upper_voltage:g} V must be above lower_voltage "
                                 f"{self.lower_voltage:g} V")

    def charge(self, current: float, cycle: int, label: str, *, limit_Ah: float | None, nominal_s: float) -> None:
        self.run_segment(lambda: self.cycler.apply_current(
            current, max_voltage_V=self.upper_voltage, min_voltage_V=0.0,
            until_time_s=GUARD * nominal_s, until_charge_Ah=limit_Ah),
            cycle=cycle, density_mA_cm2=1000 * current / self.area_cm2, label=label)  # fmt: skip

    def discharge(self, current: float, cycle: int, label: str, *, nominal_s: float) -> None:
        self.run_segment(lambda: self.cycler.apply_current(
            -current, max_voltage_V=5.0, min_voltage_V=self.lower_voltage, until_time_s=GUARD * nominal_s),
            cycle=cycle, density_mA_cm2=-1000 * current / self.area_cm2, label=label)  # fmt: skip

    def run_cycles(self, plan: list[tuple[str, float, float | None, float, float]]) -> None:
        """Run (label, charge A, charge limit Ah or None, discharge A, nominal hours per C) cycles, numbered 1..,
        until the plan ends, a short is found or a stop is requested."""
        for cycle, (label, charge_A, limit_Ah, discharge_A, hours) in enumerate(plan, start=1):
            if self.ended:
                break
            self.charge(charge_A, cycle, f"{label} charge", limit_Ah=limit_Ah, nominal_s=hours * SECONDS_PER_HOUR)
            if self.ended:
                break
            self.discharge(discharge_A, cycle, f"{label} discharge", nominal_s=hours * SECONDS_PER_HOUR)


class CathodeCycling(FullCellBase):
    """Full cells cycled at C-rates of their cathode, after activation."""

    SIM_CELL = "NMC|Mg/W-Cu"

    cathode_mass = FloatParameter("Cathode active mass", units="mg", minimum=0, maximum=10000, default=0.0,
                                  description="Active material mass; 0 = use areal_capacity")
    specific_capacity = FloatParameter("Specific capacity at 1C", units="mAh/g", minimum=1, maximum=5000,
                                       default=200.0, description="Sets 1C (NMC811: 200 mA/g)")
    areal_capacity = FloatParameter("Areal capacity at 1C", units="mAh/cm²", minimum=0, maximum=100, default=1.0,
                                    description="Used when no cathode mass is given (Wang: ≈1 mAh/cm²)")
    activation_cycles = IntegerParameter("Activation cycles", minimum=0, maximum=100, default=3)
    activation_rate = FloatParameter("Activation rate", units="C", minimum=0.001, maximum=20, default=0.1)

    def check(self) -> None:
        super().check()
        if not self.cathode_mass and not self.areal_capacity:
            raise ParameterError("cathode_mass: C-rates need the cathode's capacity; give cathode_mass (mg of active "
                                 "material, with specific_capacity) or areal_capacity (mAh/cm²)")

    @property
    def nominal_Ah(self) -> float:
        """The cathode's 1C capacity, Ah."""
        if self.cathode_mass:
            return self.cathode_mass * self.specific_capacity / 1e6
        return charge_Ah(self.areal_capacity, self.area_cm2)

    def rate_current(self, c_rate: float) -> float:
        return c_rate * self.nominal_Ah

    def sim_defaults(self) -> dict[str, Any]:
        mass = self.cathode_mass or (self.nominal_Ah * 1e6 / self.specific_capacity if self.areal_capacity else 0)
        return super().sim_defaults() | ({"cathode_mass_mg": mass} if mass else {})

    def analyzer_settings(self) -> dict[str, Any]:
        return {"upper_V": self.upper_voltage, "lower_V": self.lower_voltage,
                "cathode_mass_mg": self.cathode_mass or None,
                "reference_cycle": self.activation_cycles + 1 if self.activation_cycles else None}

    def activation(self) -> list[tuple[str, float, float | None, float, float]]:
        current = self.rate_current(self.activation_rate)
        return [("activation", current, None, current, 1 / self.activation_rate)] * self.activation_cycles

    def estimated_duration_s(self) -> float:
        try:
            return sum(2 * p[4] for p in self.plan()) * SECONDS_PER_HOUR
        except ParameterError:
            return super().estimated_duration_s()

    def execute(self) -> None:
        self.run_cycles(self.plan())
        self.report()

    def plan(self) -> list[tuple[str, float, float | None, float, float]]:
        raise NotImplementedError


class FullCellProcedure(CathodeCycling):
    """Activation, then cycling at one C-rate, optionally to a limited depth of charge."""

    NAME = "fullcell"

    cycling_rate = FloatParameter("Cycling rate", units="C", minimum=0.001, maximum=20, default=0.33)
    cycles = IntegerParameter("Cycles after activation", minimum=1, maximum=100000, default=150)
    depth_of_charge = FloatParameter("Depth of charge", units="%", minimum=1, maximum=100, default=100.0,
                                     description="Each charge after activation stops at this share of 1C capacity")

    def plan(self) -> list[tuple[str, float, float | None, float, float]]:
        current = self.rate_current(self.cycling_rate)
        limit = self.nominal_Ah * self.depth_of_charge / 100 if self.depth_of_charge < 100 else None
        return self.activation() + [("cycling", current, limit, current, 1 / self.cycling_rate)] * self.cycles


class HalfDepthProcedure(FullCellProcedure):
    """Wang's 50 % depth-of-charge protocol: the cathode keeps a lithium reservoir."""

    NAME = "fullcell-doc"

    depth_of_charge = FloatParameter("Depth of charge", units="%", minimum=1, maximum=100, default=50.0,
                                     description="Each charge after activation stops at this share of 1C capacity")
    cycles = IntegerParameter("Cycles after activation", minimum=1, maximum=100000, default=256)


class RateCapabilityProcedure(CathodeCycling):
    """Discharge capacity at a ladder of C-rates."""

    NAME = "rate"

    rates = Parameter("C-rates", default="0.1,0.2,0.3,0.5,1,2", description="Comma-separated, in C")
    cycles_per_rate = IntegerParameter("Cycles per rate", minimum=1, maximum=1000, default=3)

    def check(self) -> None:
        super().check()
        parse_numbers("rates", self.rates, MAX_C_RATE)

    def plan(self) -> list[tuple[str, float, float | None, float, float]]:
        ladder = []
        for rate in parse_numbers("rates", self.rates, MAX_C_RATE):
            current = self.rate_current(rate)
            ladder += [(f"{rate:g}C", current, None, current, 1 / rate)] * self.cycles_per_rate
        return self.activation() + ladder

    def report(self) -> None:
        self.cycler.rest()
        self._emit_findings(self.analyzer.finish())
        result = self.analyzer.result().to_dict()
        result["rates"] = rate_table(result.get("cycles", []), parse_numbers("rates", self.rates, MAX_C_RATE),
                                     self.activation_cycles, self.cycles_per_rate)
        if result["rates"]:
            unit = "mAh/g" if self.cathode_mass else "mAh/cm²"
            result["headline"] = "Discharge capacity " + ", ".join(
                f"{r['discharge']:.3g} {unit} at {r['rate_C']:g}C" for r in result["rates"])
        self.emit("result", result)


def rate_table(cycles: list[dict], rates: list[float], skip: int, per_rate: int) -> list[dict]:
    """Mean discharge capacity per C-rate from the per-cycle table (mAh/g when known, else mAh/cm²)."""
    table = []
    for k, rate in enumerate(rates):
        group = [c for c in cycles if skip + k * per_rate < c["cycle"] <= skip + (k + 1) * per_rate]
        values = [c.get("discharge_mAh_g") or c.get("discharge_mAh_cm2") for c in group]
        values = [v for v in values if v is not None]
        if values:
            table.append({"rate_C": rate, "discharge": sum(values) / len(values), "cycles": len(values)})
    return table


class ChargingCCDProcedure(FullCellBase):
    """The patent's full-cell charging CCD: charge current density stepped at a fixed areal capacity."""

    NAME = "fullcell-ccd"
    SIM_CELL = "LCO|Ag|Mg|Li"

    upper_voltage = FloatParameter("Upper voltage", units="V", minimum=0.1, maximum=5, default=4.2,
                                   description="Charge cutoff (LCO)")
    lower_voltage = FloatParameter("Lower voltage", units="V", minimum=0.0, maximum=5, default=3.0)
    capacity = FloatParameter("Capacity per charge", units="mAh/cm²", minimum=0.001, maximum=100, default=3.0)
    formation_density = FloatParameter("Formation current density", units="mA/cm²", minimum=0.001, maximum=100,
                                       default=0.3)
    formation_cycles = IntegerParameter("Formation cycles", minimum=0, maximum=100, default=2)
    charge_densities = Parameter("Charge current densities", default="0.6,1.0,1.5", description="mA/cm², in order")
    cycles_per_density = IntegerParameter("Cycles per charge density", minimum=1, maximum=1000, default=3)
    discharge_density = FloatParameter("Discharge current density", units="mA/cm²", minimum=0.001, maximum=100,
                                       default=0.6)
    cycles_after = IntegerParameter("Cycles after the ladder", minimum=0, maximum=100000, default=30,
                                    description="At the last charge density")

    def check(self) -> None:
        super().check()
        parse_numbers("charge_densities", self.charge_densities, type(self).discharge_density.maximum)

    def analyzer_settings(self) -> dict[str, Any]:
        return {"upper_V": self.upper_voltage, "lower_V": self.lower_voltage, "capacity_mAh_cm2": self.capacity}

    def densities(self) -> list[float]:
        """The charge current density of each cycle, mA/cm²."""
        ladder = parse_numbers("charge_densities", self.charge_densities, type(self).discharge_density.maximum)
        return ([self.formation_density] * self.formation_cycles
                + [j for j in ladder for _ in range(self.cycles_per_density)] + [ladder[-1]] * self.cycles_after)

    def plan(self) -> list[tuple[str, float, float | None, float, float]]:
        limit = charge_Ah(self.capacity, self.area_cm2)
        plan = []
        for k, j in enumerate(self.densities()):
            discharge = self.formation_density if k < self.formation_cycles else self.discharge_density
            plan.append((f"{j:g} mA/cm²", current_A(j, self.area_cm2), limit, current_A(discharge, self.area_cm2),
                         self.capacity / min(j, discharge)))
        return plan

    def estimated_duration_s(self) -> float:
        return sum(self.capacity * (1 / j + 1 / self.discharge_density) for j in self.densities()) * SECONDS_PER_HOUR

    def execute(self) -> None:
        self.run_cycles(self.plan())
        self.report()

    def report(self) -> None:
        self.cycler.rest()
        self._emit_findings(self.analyzer.finish())
        result = self.analyzer.result().to_dict()
        result |= charging_ccd(result, self.densities())
        result["headline"] = charging_headline(result)
        self.emit("result", result)


def charging_ccd(result: dict, densities: list[float]) -> dict:
    """The highest charge current density whose charges all completed before any short, and where it shorted."""
    short = result.get("short") or None
    failed_cycle = short["cycle"] if short else None
    done = {c["cycle"] for c in result.get("cycles", []) if failed_cycle is None or c["cycle"] < failed_cycle}
    passed = [j for k, j in enumerate(densities, start=1) if k in done]
    fail_density = densities[failed_cycle - 1] if failed_cycle and failed_cycle <= len(densities) else None
    passed = [j for j in passed if fail_density is None or j < fail_density]
    return {"charging_ccd_mA_cm2": max(passed) if passed else None, "short_density_mA_cm2": fail_density,
            "short_cycle": failed_cycle, "cycles_completed": len(done)}


def charging_headline(r: dict) -> str:
    if r["short_cycle"] is None:
        return (f"Charging CCD ≥ {r['charging_ccd_mA_cm2']:g} mA/cm²: no short in {r['cycles_completed']} cycles"
                if r["charging_ccd_mA_cm2"] else "No complete cycle")
    ccd = f"{r['charging_ccd_mA_cm2']:g} mA/cm²" if r["charging_ccd_mA_cm2"] else "below the first charge density"
    return (f"Charging CCD = {ccd}; shorted while charging at {r['short_density_mA_cm2']:g} mA/cm² in cycle "
            f"{r['short_cycle']}")
