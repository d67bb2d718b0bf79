"""EClib techniques for the SP-200 (VMP-300 family): labels, types and ranges, checked before anything is loaded.

A technique is its EClib name, its technique ID (``TDataInfos.TechniqueID``), the stem of its ``.ecc`` file for the
VMP-300 family (``ocv4`` -> ``ocv4.ecc``; the VMP3 family's ``ocv.ecc`` is expected to fail on an SP-200 with
ERR_TECH_INCOMPATIBLEECC, -401) and its labels: the case-sensitive ECC parameter names with their EClib type and
range. The builders (:func:`ocv`, :func:`cplimit`, :func:`calimit`, :func:`peis`, :func:`geis`, :func:`loop`) return
:class:`Param` lists that :func:`validate` has checked; a bad label, type or value raises ValueError naming the
label and the fix. ``EClib.ecc_params`` turns such a list into ``TEccParams`` through ``BL_Define*Parameter``.

There is no GCPL technique in EClib: galvanostatic cycling with limits is CPLIMIT, a potential hold CALIMIT, rest
OCV, and LOOP repeats the techniques from ``protocol_number`` on. Sources: docs/instruments/biologic-eclib.md.

Confirmed: technique IDs, ParamType codes and the I_Range/E_Range/Bandwidth values (BioLogic's C header); PEIS's
first five labels (vs_initial .. Duration_step), their types, the "= initial" rules and the 24 µs time base (the
manual's §7.11, first page). Unconfirmed (the rest of the manual was not found public; these come from public
wrappers that agree with each other):

- The OCV labels (BioLogic's C++ example, a copy not traced to a repository, pyeclab, ISIS EPICS-ECLab) and the
  ``*4.ecc`` stems (file lists of pyeclab's and easy-biologic's packages).
- PEIS's labels from Step_number on, their ranges, ``sweep`` False = logarithmic (easy-biologic, NRCan's wrapper,
  PyExpLabSys), and GEIS's labels (the same with Current/``Amplitude_Current``; I_Range not AUTO, easy-biologic).
- ``Step_number`` (steps - 1) for CPLIMIT/CALIMIT, as pyeclab and ISIS EPICS-ECLab send it (easy-biologic's type
  table spells ``Step_nuber`` but its CALimit program sends ``Step_number``); its range 0..98 (PyExpLabSys).
- GEIS records on ``Record_every_dE`` (easy-biologic's GEIS program; its type table says ``Record_every_dV``).
- The Test<n>_Config word: bit 0 active, bit 1 logic (1 = AND), bits 2-4 comparison (1 = above), bits 5+ variable
  (Ewe 0, I 3), from easy-biologic (quoting the manual), ISIS EPICS-ECLab's comments and PyExpLabSys (5 = "E >");
  whether "above" is > or >=, and whether a current limit compares I or |I|.
- Exit_Cond 0 next step, 1 next technique, 2 stop (pyeclab, easy-biologic, ISIS agree); LOOP's ``protocol_number``
  being the 0-based index of the technique to go back to and ``loop_N_times`` the number of repeats.
- That every technique but LOOP takes I_Range, E_Range and Bandwidth (easy-biologic sends them with each; OCV here
  without I_Range, as BioLogic's own OCV example; one pyeclab fork says GEIS takes no E_Range/Bandwidth).
- That an I range's name is its full scale (the 1 mA range holds ±1 mA), used to refuse a current it cannot hold.
- The SP-200's 2 MHz upper frequency (the issue's figure; another public note says 3 MHz).
- Duration_step ≤ 24 µs·2^31 is the manual's PEIS range; GEIS is given the same by analogy.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

MAX_SINGLE = 3.4028234663852886e38  # largest finite float32
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SP200_MAX_FREQUENCY_HZ = 2e6
EIS_TIME_BASE_S = 24e-6  # PEIS first process (manual §7.11): Duration_step ≤ time base · 2^31
MAX_STEPS = 99  # Step_number 0..98
MAX_LIMITS = 3  # Test1..Test3


class ParamType(IntEnum):
    """``TEccParam.ParamType``, and so which ``BL_Define*Parameter`` defines the parameter."""

    INT32 = 0
    BOOLEAN = 1
    SINGLE = 2


class IRange(IntEnum):
    """``I_Range`` (KBIO_IRANGE_*); a fixed range is named for its full scale."""

    I_100pA = 0
    I_1nA = 1
    I_10nA = 2
    I_100nA = 3
    I_1uA = 4
    I_10uA = 5
    I_100uA = 6
    I_1mA = 7
    I_10mA = 8
    I_100mA = 9
    I_1A = 10
    BOOSTER = 11
    AUTO = 12


FULL_SCALE_A = {r: 10.0 ** (r - IRange.I_1A) for r in IRange if r <= IRange.I_1A}  # I_1A -> 1 A, I_1mA -> 1e-3 A


class ERange(IntEnum):
    """``E_Range`` (KBIO_ERANGE_*)."""

    V2_5 = 0
    V5 = 1
    V10 = 2
    AUTO = 3


class Exit(IntEnum):
    """``Exit_Cond``: where a CPLIMIT/CALIMIT step goes when one of its limits is reached."""

    NEXT_STEP = 0
    NEXT_TECHNIQUE = 1
    STOP = 2


class Variable(IntEnum):
    """What a limit watches (bits 5+ of Test<n>_Config)."""

    EWE = 0
    CURRENT = 3


class Comparison(IntEnum):
    BELOW = 0
    ABOVE = 1


class Logic(IntEnum):
    """How a limit combines with the step's other limits."""

    OR = 0
    AND = 1


@dataclass(frozen=True)
class Limit:
    """One of a step's three tests: end the step when ``variable`` goes ``comparison`` ``value`` (V or A)."""

    variable: Variable
    comparison: Comparison
    value: float
    logic: Logic = Logic.OR

    @property
    def config(self) -> int:
        """The Test<n>_Config word: bit 0 active, bit 1 logic, bits 2-4 comparison, bits 5+ variable."""
        return 1 | self.logic << 1 | self.comparison << 2 | self.variable << 5


_MAX_CONFIG = Limit(Variable.CURRENT, Comparison.ABOVE, 0.0, Logic.AND).config


@dataclass(frozen=True)
class Step:
    """A CPLIMIT (``setpoint`` in A) or CALIMIT (in V) step, ended by its duration or by its limits."""

    setpoint: float
    duration_s: float
    limits: tuple[Limit, ...] = ()
    exit: Exit = Exit.NEXT_STEP
    vs_initial: bool = False  # setpoint relative to the initial value (the manual: "vs initial one")


@dataclass(frozen=True)
class Label:
    """An ECC parameter a technique takes: its type and its inclusive range (``lo_open`` excludes ``lo``)."""

    name: str
    type: ParamType
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    per_step: bool = False  # one value per step, its index the step's
    same_as: str | None = None  # must equal that label (PEIS's final step is its initial one)
    unit: str = ""
    why: str = ""  # said when the value is out of range

    def bounds(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "+inf" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.lo_open else '['}{lo}, {hi}]"


@dataclass(frozen=True)
class Param:
    """One ECC parameter as ``BL_Define*Parameter`` takes it: label, type, value and (step) index."""

    label: str
    type: ParamType
    value: bool | int | float
    index: int = 0


@dataclass(frozen=True)
class Technique:
    name: str
    tech_id: int
    ecc_stem: str  # VMP-300 family
    labels: tuple[Label, ...]

    @property
    def ecc_file(self) -> str:
        return self.ecc_stem + ".ecc"

    def label(self, name: str) -> Label:
        """The label called exactly ``name``; ValueError saying the right spelling if there is one."""
        for label in self.labels:
            if label.name == name:
                return label
        names = [label.name for label in self.labels]
        same = [n for n in names if n.lower() == str(name).lower()]
        close = difflib.get_close_matches(str(name), names, n=1)
        if same:
            fix = f"labels are case-sensitive: write {same[0]!r}"
        elif close:
            fix = f"did you mean {close[0]!r}?"
        else:
            fix = "its labels are " + ", ".join(names)
        raise ValueError(f"{self.name} has no parameter {name!r}; {fix}")


def _ranges(*, i_range: bool = True, i_auto: bool = True) -> tuple[Label, ...]:
    current = (Label("I_Range", ParamType.INT32, 0, IRange.AUTO if i_auto else IRange.BOOSTER),) if i_range else ()
    return (*current, Label("E_Range", ParamType.INT32, 0, ERange.AUTO), Label("Bandwidth", ParamType.INT32, 1, 9))


def _step_labels(setpoint: str, unit: str, record: str, record_unit: str) -> tuple[Label, ...]:
    tests = tuple(
        label
        for n in range(1, MAX_LIMITS + 1)
        for label in (
            Label(f"Test{n}_Config", ParamType.INT32, 0, _MAX_CONFIG, per_step=True),
            Label(f"Test{n}_Value", ParamType.SINGLE, per_step=True),
        )
    )
    return (
        Label(setpoint, ParamType.SINGLE, per_step=True, unit=unit),
        Label("vs_initial", ParamType.BOOLEAN, per_step=True),
        Label("Duration_step", ParamType.SINGLE, 0, per_step=True, unit="s"),
        Label("Step_number", ParamType.INT32, 0, MAX_STEPS - 1),
        Label("Record_every_dT", ParamType.SINGLE, 0, unit="s"),
        Label(record, ParamType.SINGLE, 0, unit=record_unit),
        *tests,
        Label("Exit_Cond", ParamType.INT32, 0, max(Exit), per_step=True),
        Label("N_Cycles", ParamType.INT32, 0),
    )


def _eis_labels(kind: str, unit: str, record: str, record_unit: str, amplitude: str) -> tuple[Label, ...]:
    sp200 = f"the SP-200 measures above 0 Hz and up to {SP200_MAX_FREQUENCY_HZ:g} Hz"
    return (
        Label("vs_initial", ParamType.BOOLEAN),
        Label("vs_final", ParamType.BOOLEAN, same_as="vs_initial"),
        Label(f"Initial_{kind}_step", ParamType.SINGLE, unit=unit),
        Label(f"Final_{kind}_step", ParamType.SINGLE, same_as=f"Initial_{kind}_step", unit=unit),
        Label("Duration_step", ParamType.SINGLE, 0, EIS_TIME_BASE_S * 2**31, unit="s"),
        Label("Step_number", ParamType.INT32, 0, 0),
        Label("Record_every_dT", ParamType.SINGLE, 0, unit="s"),
        Label(record, ParamType.SINGLE, 0, unit=record_unit),
        Label("Final_frequency", ParamType.SINGLE, 0, SP200_MAX_FREQUENCY_HZ, lo_open=True, unit="Hz", why=sp200),
        Label("Initial_frequency", ParamType.SINGLE, 0, SP200_MAX_FREQUENCY_HZ, lo_open=True, unit="Hz", why=sp200),
        Label("sweep", ParamType.BOOLEAN),
        Label(amplitude, ParamType.SINGLE, 0, lo_open=True, unit=unit),
        Label("Frequency_number", ParamType.INT32, 1),
        Label("Average_N_times", ParamType.INT32, 1),
        Label("Correction", ParamType.BOOLEAN),
        Label("Wait_for_steady", ParamType.SINGLE, 0, unit="periods"),
    )


OCV = Technique("OCV", 100, "ocv4", (
    Label("Rest_time_T", ParamType.SINGLE, 0, unit="s"),
    Label("Record_every_dE", ParamType.SINGLE, 0, unit="V"),
    Label("Record_every_dT", ParamType.SINGLE, 0, unit="s"),
    *_ranges(i_range=False),
))  # fmt: skip
CPLIMIT = Technique("CPLIMIT", 155, "cplimit4", (
    *_step_labels("Current_step", "A", "Record_every_dE", "V"), *_ranges(i_auto=False),
))  # fmt: skip
CALIMIT = Technique("CALIMIT", 157, "calimit4", (
    *_step_labels("Voltage_step", "V", "Record_every_dI", "A"), *_ranges(),
))  # fmt: skip
PEIS = Technique("PEIS", 104, "peis4", (
    *_eis_labels("Voltage", "V", "Record_every_dI", "A", "Amplitude_Voltage"), *_ranges(),
))  # fmt: skip
GEIS = Technique("GEIS", 107, "geis4", (
    *_eis_labels("Current", "A", "Record_every_dE", "V", "Amplitude_Current"), *_ranges(i_auto=False),
))  # fmt: skip
LOOP = Technique("LOOP", 150, "loop4", (
    Label("loop_N_times", ParamType.INT32, 0),
    Label("protocol_number", ParamType.INT32, 0),
))  # fmt: skip
TECHNIQUES = {t.tech_id: t for t in (OCV, CPLIMIT, CALIMIT, PEIS, GEIS, LOOP)}


def _check_value(technique: Technique, label: Label, p: Param) -> None:
    where = f"{technique.name}: {p.label}" + (f"[{p.index}]" if label.per_step else "")
    if p.type != label.type:
        given = p.type.name if isinstance(p.type, ParamType) else repr(p.type)
        raise ValueError(f"{where} is {label.type.name} in EClib, not {given}; define it as {label.type.name}")
    if not isinstance(p.index, int) or isinstance(p.index, bool) or p.index < 0:
        raise ValueError(f"{where}: index {p.index!r} must be an int >= 0 (the step, from 0)")
    if not label.per_step and p.index != 0:
        raise ValueError(f"{where} takes one value, not one per step; give it index 0, not {p.index}")
    v = p.value
    if label.type is ParamType.BOOLEAN:
        if not isinstance(v, bool):
            raise ValueError(f"{where} must be True or False, not {v!r}")
        return
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{where} must be a number, not {v!r}")
    if label.type is ParamType.INT32 and not (isinstance(v, int) and INT32_MIN <= v <= INT32_MAX):
        raise ValueError(f"{where} = {v!r} must be a whole number that fits 32 bits")
    if label.type is ParamType.SINGLE and not (math.isfinite(v) and abs(v) <= MAX_SINGLE):
        raise ValueError(f"{where} = {v!r} must be a finite 32-bit float")
    below = label.lo is not None and (v <= label.lo if label.lo_open else v < label.lo)
    above = label.hi is not None and v > label.hi
    if below or above:
        unit = f" {label.unit}" if label.unit else ""
        why = f" ({label.why})" if label.why else ""
        raise ValueError(f"{where} = {v:g}{unit} is outside {label.bounds()}{unit}{why}; give a value in that range")


def validate(technique: Technique, params: Sequence[Param]) -> list[Param]:
    """``params`` as a list if each is a label of ``technique`` with its type and range, and every label is given
    (a per-step label once per step, Step_number + 1 steps); else ValueError naming the label and the fix."""
    given: dict[tuple[str, int], Param] = {}
    for p in params:
        label = technique.label(p.label)
        _check_value(technique, label, p)
        if (p.label, p.index) in given:
            raise ValueError(f"{technique.name}: {p.label} index {p.index} is given twice; give it once")
        given[(p.label, p.index)] = p
    steps = given[("Step_number", 0)].value + 1 if ("Step_number", 0) in given else 1
    for label in technique.labels:
        indices = range(steps) if label.per_step else range(1)
        missing = [i for i in indices if (label.name, i) not in given]
        if missing:
            step = f" for step {missing[0]}" if label.per_step else ""
            raise ValueError(f"{technique.name}: {label.name} is missing{step}; give it ({label.type.name})")
        extra = sorted(i for (name, i) in given if name == label.name and i not in indices)
        if extra:
            raise ValueError(f"{technique.name}: {label.name} index {extra[0]} is beyond Step_number = {steps - 1}; "
                             f"give one value per step, indices 0..{steps - 1}")
        if label.same_as and given[(label.name, 0)].value != given[(label.same_as, 0)].value:
            raise ValueError(f"{technique.name}: {label.name} must equal {label.same_as} "
                             f"({given[(label.same_as, 0)].value!r}); set it to that")
    return list(params)


def _hardware(i_range: IRange | None, e_range: ERange, bandwidth: int) -> list[Param]:
    current = [Param("I_Range", ParamType.INT32, i_range)] if i_range is not None else []
    return [*current, Param("E_Range", ParamType.INT32, e_range), Param("Bandwidth", ParamType.INT32, bandwidth)]


def _fixed_range(technique: str, i_range: IRange, currents: Sequence[float], what: str) -> None:
    """ValueError unless ``i_range`` is a fixed range whose full scale holds every current (A)."""
    if i_range == IRange.AUTO:
        raise ValueError(f"{technique}: I_Range AUTO is not allowed with a controlled current; "
                         f"choose the smallest fixed range that holds {what}")
    scale = FULL_SCALE_A.get(i_range)
    worst = max((abs(i) for i in currents), default=0.0)
    if scale is not None and worst > scale:
        raise ValueError(f"{technique}: {what} = {worst:g} A is beyond I_Range {IRange(i_range).name} "
                         f"(±{scale:g} A); choose a larger I_Range")


def _steps(technique: str, setpoint: str, steps: Sequence[Step]) -> list[Param]:
    if not 1 <= len(steps) <= MAX_STEPS:
        raise ValueError(f"{technique}: {len(steps)} steps; give 1 to {MAX_STEPS}")
    params = [Param("Step_number", ParamType.INT32, len(steps) - 1)]
    for n, step in enumerate(steps):
        if len(step.limits) > MAX_LIMITS:
            raise ValueError(f"{technique}: step {n} has {len(step.limits)} limits; EClib tests at most "
                             f"{MAX_LIMITS} (Test1..Test3), split the step")
        params += [
            Param(setpoint, ParamType.SINGLE, step.setpoint, n),
            Param("vs_initial", ParamType.BOOLEAN, step.vs_initial, n),
            Param("Duration_step", ParamType.SINGLE, step.duration_s, n),
            Param("Exit_Cond", ParamType.INT32, step.exit, n),
        ]
        for k in range(MAX_LIMITS):
            limit = step.limits[k] if k < len(step.limits) else None  # an unused test is inactive: config 0
            params += [
                Param(f"Test{k + 1}_Config", ParamType.INT32, limit.config if limit else 0, n),
                Param(f"Test{k + 1}_Value", ParamType.SINGLE, limit.value if limit else 0.0, n),
            ]
    return params


def ocv(duration_s: float, *, record_dt_s: float, record_dE_V: float = 0.0, e_range: ERange = ERange.V10,
        bandwidth: int = 5) -> list[Param]:
    """Rest at open circuit for ``duration_s``, recording every ``record_dt_s`` (and every ``record_dE_V`` change)."""
    return validate(OCV, [
        Param("Rest_time_T", ParamType.SINGLE, duration_s),
        Param("Record_every_dE", ParamType.SINGLE, record_dE_V),
        Param("Record_every_dT", ParamType.SINGLE, record_dt_s),
        *_hardware(None, e_range, bandwidth),
    ])  # fmt: skip


def cplimit(steps: Sequence[Step], *, i_range: IRange, record_dt_s: float, record_dE_V: float = 0.0,
            n_cycles: int = 0, e_range: ERange = ERange.V10, bandwidth: int = 5) -> list[Param]:
    """Constant-current steps (A) ended by time or by their limits: galvanostatic cycling. ``i_range`` must be
    fixed and hold every absolute step current; ``n_cycles`` repeats the steps that many more times."""
    _fixed_range("CPLIMIT", i_range, [s.setpoint for s in steps if not s.vs_initial], "the largest |Current_step|")
    return validate(CPLIMIT, [
        *_steps("CPLIMIT", "Current_step", steps),
        Param("Record_every_dT", ParamType.SINGLE, record_dt_s),
        Param("Record_every_dE", ParamType.SINGLE, record_dE_V),
        Param("N_Cycles", ParamType.INT32, n_cycles),
        *_hardware(i_range, e_range, bandwidth),
    ])  # fmt: skip


def calimit(steps: Sequence[Step], *, record_dt_s: float, record_dI_A: float = 0.0, n_cycles: int = 0,
            i_range: IRange = IRange.AUTO, e_range: ERange = ERange.V10, bandwidth: int = 5) -> list[Param]:
    """Constant-potential steps (V) ended by time or by their limits: a potential hold."""
    return validate(CALIMIT, [
        *_steps("CALIMIT", "Voltage_step", steps),
        Param("Record_every_dT", ParamType.SINGLE, record_dt_s),
        Param("Record_every_dI", ParamType.SINGLE, record_dI_A),
        Param("N_Cycles", ParamType.INT32, n_cycles),
        *_hardware(i_range, e_range, bandwidth),
    ])  # fmt: skip


@dataclass(frozen=True)
class Sweep:
    """The frequencies of a PEIS/GEIS: ``points`` from ``f_initial_Hz`` to ``f_final_Hz`` (logarithmic unless
    ``linear``), each measured ``average_n`` times after ``wait_periods`` periods; ``correction`` for drift."""

    f_initial_Hz: float
    f_final_Hz: float
    points: int
    linear: bool = False
    average_n: int = 1
    wait_periods: float = 0.0
    correction: bool = False


def _eis(technique: Technique, kind: str, dc: float, amplitude: float, sweep: Sweep, vs_initial: bool,
         duration_s: float, record_dt_s: float, record: float, hardware: list[Param]) -> list[Param]:
    record_label = "Record_every_dI" if kind == "Voltage" else "Record_every_dE"
    return validate(technique, [
        Param("vs_initial", ParamType.BOOLEAN, vs_initial),
        Param("vs_final", ParamType.BOOLEAN, vs_initial),
        Param(f"Initial_{kind}_step", ParamType.SINGLE, dc),
        Param(f"Final_{kind}_step", ParamType.SINGLE, dc),
        Param("Duration_step", ParamType.SINGLE, duration_s),
        Param("Step_number", ParamType.INT32, 0),
        Param("Record_every_dT", ParamType.SINGLE, record_dt_s),
        Param(record_label, ParamType.SINGLE, record),
        Param("Final_frequency", ParamType.SINGLE, sweep.f_final_Hz),
        Param("Initial_frequency", ParamType.SINGLE, sweep.f_initial_Hz),
        Param("sweep", ParamType.BOOLEAN, sweep.linear),
        Param(f"Amplitude_{kind}", ParamType.SINGLE, amplitude),
        Param("Frequency_number", ParamType.INT32, sweep.points),
        Param("Average_N_times", ParamType.INT32, sweep.average_n),
        Param("Correction", ParamType.BOOLEAN, sweep.correction),
        Param("Wait_for_steady", ParamType.SINGLE, sweep.wait_periods),
        *hardware,
    ])  # fmt: skip


def peis(e_V: float, *, amplitude_V: float, sweep: Sweep, vs_initial: bool = False, duration_s: float = 0.0,
         record_dt_s: float = 0.0, record_dI_A: float = 0.0, i_range: IRange = IRange.AUTO,
         e_range: ERange = ERange.V10, bandwidth: int = 5) -> list[Param]:
    """Potentiostatic EIS around ``e_V`` (relative to the rest potential if ``vs_initial``), held ``duration_s``
    before the sweep; frequencies up to the SP-200's 2 MHz."""
    return _eis(PEIS, "Voltage", e_V, amplitude_V, sweep, vs_initial, duration_s, record_dt_s, record_dI_A,
                _hardware(i_range, e_range, bandwidth))


def geis(i_A: float, *, amplitude_A: float, i_range: IRange, sweep: Sweep, vs_initial: bool = False,
         duration_s: float = 0.0, record_dt_s: float = 0.0, record_dE_V: float = 0.0, e_range: ERange = ERange.V10,
         bandwidth: int = 5) -> list[Param]:
    """Galvanostatic EIS around ``i_A``; ``i_range`` must be fixed and hold |i_A| + amplitude_A."""
    peak = abs(amplitude_A) + (0.0 if vs_initial else abs(i_A))
    _fixed_range("GEIS", i_range, [peak], "|Initial_Current_step| + Amplitude_Current")
    return _eis(GEIS, "Current", i_A, amplitude_A, sweep, vs_initial, duration_s, record_dt_s, record_dE_V,
                _hardware(i_range, e_range, bandwidth))


def loop(repeats: int, *, back_to: int) -> list[Param]:
    """Run the techniques from index ``back_to`` (0-based, in load order) up to this LOOP ``repeats`` more times."""
    return validate(LOOP, [
        Param("loop_N_times", ParamType.INT32, repeats),
        Param("protocol_number", ParamType.INT32, back_to),
    ])  # fmt: skip
