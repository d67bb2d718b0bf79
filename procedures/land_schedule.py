"""The LANDMon step table of a labctl procedure: what an operator types into a LAND CT2001A/CT3001A cycler.

LAND cyclers have no public control interface (research/instruments.md §5): the operator types a test into LANDMon's
step editor. ``land_steps(procedure)`` turns a procedure with its parameters into that table, from the procedure's
own plan (the CCD ladder of ``CCDProcedure.half_cycles``, a full cell's ``plan()``, the CE procedures' limits), so a
LAND test and a labctl test of the same cell follow the same protocol. What LAND cannot do (stop on labctl's short
detector, measure impedance) is refused or said in the schedule's notes. See ``docs/land.md``.

Step types are labctl's wording of LAND's work modes; LAND's own data interface names them constant current
charge/discharge, constant voltage charge/discharge, rest and stop (the ``PM_*`` modes of LANDCex.dll), and LANDdt's
exports CCC, CCD, CV and Rest. LAND counts current as positive on charge, as labctl and BDF do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby
from typing import Any

from labctl.procedures.activation import ActivationProcedure
from labctl.procedures.base import LabProcedure, ParameterError
from labctl.procedures.ccd import CCDProcedure
from labctl.procedures.ce import GUARD, CurrentSegment, CyclingCEProcedure, HalfCellCE, ReservoirCEProcedure
from labctl.procedures.fullcell import FullCellBase
from labctl.procedures.hold import HoldProcedure
from labctl.units import SECONDS_PER_HOUR, current_A, density_mA_cm2

CC_CHARGE, CC_DISCHARGE = "CC charge", "CC discharge"
CV_CHARGE, CV_DISCHARGE = "CV charge", "CV discharge"
CYCLE, END = "Cycle", "End"
MICRO_BELOW_A = 1e-3  # a test whose largest current is below 1 mA is typed in µA, else in mA
DIGITS = 4  # significant digits typed: rounding changes a value by at most 0.05 %

# what a LAND cannot do that these procedures are made of
CANNOT = {
    "eis": "a LAND cycler cannot measure impedance (it has no frequency-response analyser); run eis on a bench "
           "with an impedance analyser (Solartron 1260, SP-200)",
    "insitu-eis": "a LAND cycler cannot measure impedance, nor pause its test every few minutes for another "
                  "instrument; run insitu-eis on an SP-200 or an Arbin + SP-200 bench",
    "deposition": "a LAND cycler drives no deposition source or quartz-crystal monitor; deposition runs on its own "
                  "bench",
}  # fmt: skip


class LandRefused(ValueError):
    """A procedure a LAND cycler cannot run; the message starts with its name and says what a LAND cannot do."""


@dataclass(frozen=True)
class VoltageCutoff:
    relation: str  # "≥" (a charge rises to it) or "≤"
    voltage_V: float
    ends_test: bool = False  # labctl's safety limit: the test ends there (goes to the End step), not only the step

    def text(self) -> str:
        return f"{self.relation} {self.voltage_V:g}" + (f" → {END}" if self.ends_test else "")


@dataclass(frozen=True)
class LandStep:
    """One row of the step editor. A step's cut-offs end it at whichever comes first; currents are magnitudes
    (the type gives the direction); a Cycle step goes back to ``goto_step`` until its steps ran ``count`` times."""

    number: int
    type: str
    what: str  # the step in labctl's terms
    current_A: float | None = None  # CC: the current; CV: the |I| limit
    set_voltage_V: float | None = None
    until_time_s: float | None = None
    until_voltage: VoltageCutoff | None = None
    until_charge_Ah: float | None = None
    goto_step: int | None = None
    count: int | None = None


@dataclass
class LandSchedule:
    procedure: str
    area_cm2: float
    steps: list[LandStep]
    notes: list[str] = field(default_factory=list)

    @property
    def current_unit(self) -> str:
        """µA when the largest current is below 1 mA, else mA: one unit for the whole test, as LAND shows it."""
        largest = max((s.current_A for s in self.steps if s.current_A is not None), default=0.0)
        return "µA" if largest < MICRO_BELOW_A else "mA"

    @property
    def capacity_unit(self) -> str:
        return self.current_unit + "h"

    def headers(self) -> list[str]:
        """Step, type, set values (the current, or a CV step's voltage), cut-offs (time, voltage, capacity), then."""
        return ["step", "type", f"current / {self.current_unit}", "hold / V", "time / hh:mm:ss", "voltage / V",
                f"capacity / {self.capacity_unit}", "then", "labctl"]

    def cells(self, step: LandStep) -> list[str]:
        """The row as typed, in the units of ``headers``."""
        scale = 1e6 if self.current_unit == "µA" else 1e3
        return [
            str(step.number), step.type,
            "" if step.current_A is None else number(step.current_A * scale),
            "" if step.set_voltage_V is None else f"{step.set_voltage_V:g}",
            "" if step.until_time_s is None else hms(step.until_time_s),
            "" if step.until_voltage is None else step.until_voltage.text(),
            "" if step.until_charge_Ah is None else number(step.until_charge_Ah * scale),
            then(step), step.what,
        ]  # fmt: skip

    def rows(self) -> list[list[str]]:
        return [self.cells(s) for s in self.steps]

    def to_dict(self) -> dict[str, Any]:
        """SI values of every step, the row as typed (``typed``, keyed by header) and the notes."""
        headers = self.headers()
        return {"procedure": self.procedure, "area_cm2": self.area_cm2, "current_unit": self.current_unit,
                "capacity_unit": self.capacity_unit,
                "steps": [asdict(s) | {"typed": dict(zip(headers, self.cells(s), strict=True))} for s in self.steps],
                "notes": self.notes}


def number(value: float) -> str:
    return f"{value:.{DIGITS}g}"


def hms(seconds: float) -> str:
    """hh:mm:ss, whole seconds; hours go past 24 (a 100 h hold is 100:00:00)."""
    s = round(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def then(step: LandStep) -> str:
    if step.type == CYCLE:
        return f"to step {step.goto_step}, {step.count}×"
    return "end of test" if step.type == END else "next"


Block = tuple[tuple[LandStep, ...], int]  # steps, and how many times they run in a row


def land_steps(procedure: LabProcedure) -> LandSchedule:
    """The LANDMon steps of ``procedure`` as its parameters set it; LandRefused for a procedure a LAND cannot run,
    ParameterError for a setting of it a LAND cannot follow."""
    if procedure.NAME in CANNOT:
        raise LandRefused(f"{procedure.NAME}: {CANNOT[procedure.NAME]}")
    for kind, build in BUILDERS:
        if isinstance(procedure, kind):
            blocks, notes = build(procedure)
            schedule = LandSchedule(procedure.NAME, procedure.area_cm2, numbered(blocks))
            schedule.notes = [*common_notes(procedure, schedule), *notes]
            return schedule
    raise LandRefused(f"{procedure.NAME}: labctl has no LAND schedule for it")


def numbered(blocks: list[Block]) -> list[LandStep]:
    """Number the steps; a block that runs more than once gets a Cycle step back to its first step; an End step."""
    steps: list[LandStep] = []
    for block, repeats in blocks:
        first = len(steps) + 1
        steps += [replace(s, number=first + k) for k, s in enumerate(block)]
        if repeats > 1:
            span = f"step {first}" if len(block) == 1 else f"steps {first}-{len(steps)}"
            steps.append(LandStep(len(steps) + 1, CYCLE, f"repeat {span}", goto_step=first, count=repeats))
    return [*steps, LandStep(len(steps) + 1, END, "end of the test")]


def runs(cycles: Iterable[tuple[LandStep, ...]]) -> list[Block]:
    """Consecutive equal cycles as one block run that many times (LANDMon's loops repeat fixed steps)."""
    return [(cycle, len(list(same))) for cycle, same in groupby(cycles)]


def cc(current: float, what: str, *, until_time_s: float | None = None, until_voltage: VoltageCutoff | None = None,
       until_charge_Ah: float | None = None) -> LandStep:
    """A constant-current step of signed ``current`` (A; positive charges)."""
    return LandStep(0, CC_CHARGE if current > 0 else CC_DISCHARGE, what, abs(current), None, until_time_s,
                    until_voltage, until_charge_Ah)


# ---- ccd: the ladder, then the optional long phase


def ccd_blocks(p: CCDProcedure) -> tuple[list[Block], list[str]]:
    """Each level of the ladder (``half_cycles``) as its own charge/discharge pair and a Cycle step: LANDMon loops
    repeat fixed steps, and the ladder's current changes per level."""
    ladder = runs(tuple(symmetric(p, h.density_mA_cm2, h.until_time_s, h.until_charge_Ah) for h in half)
                  for _, half in groupby(p.half_cycles(), key=lambda h: h.cycle))
    levels = p.levels()
    notes = [f"Ladder ({p.variant}): {len(levels)} levels from {levels[0]:g} to {levels[-1]:g} mA/cm², "
             f"cycles per level: {p.cycles_per_step}; one pair of steps per level, as a LANDMon loop repeats fixed steps."
             + (f" Half-cycles end on capacity; the time cut-off is labctl's {GUARD:g}× guard."
                if p.variant == "fixed-capacity" else ""),
             "LAND cannot stop on labctl's short detector: the test ends only at the ±"
             f"{p.voltage_limit:g} V voltage limit (contact loss), so a shorted cell cycles on. Find the CCD "
             "afterwards: `labctl import FILE --format land`, then `labctl analyze ccd` on the imported data with "
             f"`--area {p.area_cm2:.4g} --voltage-limit {p.voltage_limit:g}"
             + (f" --bulk-resistance {p.bulk_resistance:g}`." if p.bulk_resistance else "`.")]
    if not p.then_density:
        return ladder, notes
    long = runs(tuple(symmetric(p, density, duration_s, None) for density, _, duration_s in half)
                for _, half in groupby(p.long_half_cycles(1), key=lambda h: h[1]))
    notes.append(f"Long phase at {p.then_density:g} mA/cm² for {p.then_hours:g} h: labctl starts it only after a "
                 "ladder without failure; LAND runs it after any ladder that did not reach the voltage limit, so "
                 "stop it by hand if `labctl analyze ccd` finds a short in the ladder.")
    return ladder + long, notes


def symmetric(p: CCDProcedure, density: float, until_time_s: float, until_charge_Ah: float | None) -> LandStep:
    """A half-cycle of a symmetric cell at signed ``density`` (mA/cm²), ended by the test at ±``voltage_limit``."""
    limit = VoltageCutoff("≥", p.voltage_limit, True) if density > 0 else VoltageCutoff("≤", -p.voltage_limit, True)
    return cc(current_A(density, p.area_cm2), f"{density:+g} mA/cm²", until_time_s=until_time_s,
              until_voltage=limit, until_charge_Ah=until_charge_Ah)


# ---- CE on half cells: plate a capacity, strip to the anodic cutoff


def plating(p: HalfCellCE, capacity_mAh_cm2: float, what: str, time_cutoff_s: float | None = None) -> LandStep:
    """The procedure's own plating segment (``HalfCellCE.plating``) as a LAND step."""
    return _segment(p.plating(capacity_mAh_cm2, time_cutoff_s), what, VoltageCutoff("≤", p.lower_limit))


def stripping(p: HalfCellCE, cutoff_V: float, what: str, *, expected_mAh_cm2: float,
              capacity_mAh_cm2: float | None = None, time_cutoff_s: float | None = None) -> LandStep:
    """The procedure's own stripping segment (``HalfCellCE.stripping``) as a LAND step."""
    segment = p.stripping(cutoff_V, expected_mAh_cm2=expected_mAh_cm2, capacity_mAh_cm2=capacity_mAh_cm2,
                          time_cutoff_s=time_cutoff_s)
    return _segment(segment, what, VoltageCutoff("≥", cutoff_V))


def _segment(segment: CurrentSegment, what: str, cutoff: VoltageCutoff) -> LandStep:
    return cc(segment.current_A, what, until_time_s=segment.until_time_s, until_voltage=cutoff,
              until_charge_Ah=segment.until_charge_Ah)


def ce_cycling_blocks(p: CyclingCEProcedure) -> tuple[list[Block], list[str]]:
    if p.eis:
        raise ParameterError("eis: a LAND cycler cannot pause its test for impedance spectra after chosen cycles; "
                             "give -p eis=false and measure spectra before and after on an impedance analyser")
    time_cutoff = p.time_cutoff * SECONDS_PER_HOUR or None
    cycle = (plating(p, p.capacity, f"plate {p.capacity:g} mAh/cm² at {p.density:g} mA/cm²", time_cutoff),
             stripping(p, p.anodic_cutoff, f"strip to {p.anodic_cutoff:g} V", expected_mAh_cm2=p.capacity,
                       time_cutoff_s=time_cutoff))
    notes = [short_note("ce", p, f"--protocol cycling --cutoff {p.anodic_cutoff:g}")]
    if time_cutoff:
        notes.append(f"A half-cycle ended by its {p.time_cutoff:g} h time cut-off gives a CE that is only a lower "
                     "bound; `labctl analyze ce` flags it, as a labctl run does.")
    return [(cycle, p.cycles)], notes


def ce_reservoir_blocks(p: ReservoirCEProcedure) -> tuple[list[Block], list[str]]:
    """Formation, reservoir, ``cycles`` × strip then plate Q_c, final strip: as ``ReservoirCEProcedure.execute``."""
    blocks: list[Block] = [
        ((plating(p, p.formation_capacity, "formation plating"),
          stripping(p, p.cutoff, "formation stripping", expected_mAh_cm2=p.formation_capacity)), 1),
        ((plating(p, p.reservoir_capacity, "reservoir plating Q_T"),), 1),
        ((stripping(p, p.cutoff, "cycle stripping Q_c", capacity_mAh_cm2=p.cycle_capacity,
                    expected_mAh_cm2=p.cycle_capacity),
          plating(p, p.cycle_capacity, "cycle plating Q_c")), p.cycles),
        ((stripping(p, p.cutoff, "final stripping Q_S",
                    expected_mAh_cm2=p.reservoir_capacity + p.formation_capacity),), 1),
    ]  # fmt: skip
    notes = [short_note("ce", p, f"--protocol reservoir --cutoff {p.cutoff:g}"),
             "LAND computes no reservoir CE: `labctl analyze ce` gives CE = (n·Q_c + Q_S) / (n·Q_c + Q_T)."]
    return blocks, notes


def short_note(analysis: str, p: LabProcedure, options: str) -> str:
    return ("LAND cannot stop on labctl's short detector (a labctl run ends at a short, e.g. a strip that never "
            "reaches its cutoff before its time guard): LAND goes on to the next step. Find shorts afterwards: "
            f"`labctl import FILE --format land`, then `labctl analyze {analysis}` on the imported data with "
            f"`--area {p.area_cm2:.4g} {options}`.")


# ---- full cells: the procedure's own plan of (label, charge A, charge limit Ah, discharge A, nominal hours)


def fullcell_blocks(p: FullCellBase) -> tuple[list[Block], list[str]]:
    cycles = (
        (cc(charge, f"{label}: charge at {density_mA_cm2(charge, p.area_cm2):.4g} mA/cm²",
            until_time_s=GUARD * hours * SECONDS_PER_HOUR, until_voltage=VoltageCutoff("≥", p.upper_voltage),
            until_charge_Ah=limit_Ah),
         cc(-discharge, f"{label}: discharge at {density_mA_cm2(discharge, p.area_cm2):.4g} mA/cm²",
            until_time_s=GUARD * hours * SECONDS_PER_HOUR, until_voltage=VoltageCutoff("≤", p.lower_voltage)))
        for label, charge, limit_Ah, discharge, hours in p.plan()
    )  # fmt: skip
    notes = [short_note("ce", p, f"--protocol fullcell --upper {p.upper_voltage:g} --lower {p.lower_voltage:g}"),
             f"Time cut-offs are labctl's guards ({GUARD:g}× each step's nominal duration): a charge that ends on "
             "time, not at the upper voltage, is a charging-short sign."]
    return runs(cycles), notes


# ---- hold and activation


def hold_blocks(p: HoldProcedure) -> tuple[list[Block], list[str]]:
    kind = CV_CHARGE if p.voltage >= 0 else CV_DISCHARGE  # from a collector|SE|collector cell's ≈0 V
    hold = LandStep(0, kind, f"hold {p.voltage:g} V, |I| ≤ {p.current_limit:g} mA",
                    current_A=p.current_limit / 1000, set_voltage_V=p.voltage,
                    until_time_s=p.duration * SECONDS_PER_HOUR)
    times = ", ".join(f"{t:g}" for t in p.readout_h())
    notes = ["The current column is the hold's current limit (labctl's current_limit); set it where LANDMon "
             "offers one for the step, else use a channel range that holds it.",
             f"LAND reports no readouts: read the current at {times} h from the export "
             "(`labctl import FILE --format land`)."]
    return [((hold,), 1)], notes


def activation_blocks(p: ActivationProcedure) -> tuple[list[Block], list[str]]:
    limit_s = p.time_limit * SECONDS_PER_HOUR
    cycle = (cc(current_A(-p.density, p.area_cm2), "lithiation", until_time_s=limit_s,
                until_voltage=VoltageCutoff("≤", p.lower_cutoff)),
             cc(current_A(p.density, p.area_cm2), "delithiation", until_time_s=limit_s,
                until_voltage=VoltageCutoff("≥", p.upper_cutoff)))
    notes = [f"A half-cycle that ends on its {p.time_limit:g} h time cut-off, not at its voltage, is flagged 'time' "
             "by labctl; read it from LAND's step table (each step's capacity and end voltage)."]
    return [(cycle, p.cycles)], notes


BUILDERS: list[tuple[type, Callable[[Any], tuple[list[Block], list[str]]]]] = [
    (CCDProcedure, ccd_blocks), (ReservoirCEProcedure, ce_reservoir_blocks), (CyclingCEProcedure, ce_cycling_blocks),
    (FullCellBase, fullcell_blocks), (HoldProcedure, hold_blocks), (ActivationProcedure, activation_blocks),
]  # fmt: skip


def common_notes(p: LabProcedure, schedule: LandSchedule) -> list[str]:
    """How to read and type the table, whatever the procedure."""
    notes = [f"Area {schedule.area_cm2:.4g} cm²; currents in {schedule.current_unit} (µA when the largest current is "
             f"below 1 mA, else mA), capacities in {schedule.capacity_unit}, times hh:mm:ss, "
             f"{DIGITS} significant digits.",
             "CC charge is positive current (it raises the cell voltage): in a symmetric or half cell it strips the "
             "working electrode, so connect the working electrode to LAND's positive lead.",
             "A step ends at whichever of its cut-offs comes first; the test then goes on to the next step."]
    if any(s.until_voltage and s.until_voltage.ends_test for s in schedule.steps):
        notes.append(f"A cut-off marked '→ {END}' is labctl's safety limit: make it end the test in LANDMon (the "
                     "test's protection voltage limits, or that condition pointed at the End step), not only the step.")
    if any(s.type == CYCLE for s in schedule.steps):
        notes.append("Cycle 'to step S, N×': go back to step S; N is how many times those steps run in all (if your "
                     "LANDMon counts repeats after the first pass, enter N − 1).")
    notes.append(record_note(p))
    return notes


def record_note(p: LabProcedure) -> str:
    text = f"Record a point every {p.sample_interval:g} s (labctl's sample_interval)"
    then_interval = getattr(p, "then_density", 0) and getattr(p, "then_sample_interval", None)
    return text + (f"; every {then_interval:g} s in the long phase." if then_interval else ".")

