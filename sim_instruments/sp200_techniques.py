"""The SP-200's techniques as EClib takes them: ids, ECC parameter labels and types, what is refused, data layouts.

Facts from public sources (no code copied):
- Technique ids and error codes: ``TTechniqueIdentifier_e`` and ``TErrorCodes_e`` of the development package's
  ``BLStructs.h`` as published in several wrappers (OCV 100, CA 101, CP 102, PEIS 104, GEIS 107, LOOP 150,
  CPLIMIT 155, CALIMIT 157; -4 invalid parameters, -9 "EC-Lab firmware loaded", -13 channel already used,
  -400 ECC file not found).
- Labels and types (case-sensitive): easy-biologic ``technique_fields.py`` and ``base_programs.py``, an EPICS
  BioLogic driver's ``params.cpp``, PyExpLabSys, helao-async (which cites the user's guide §7.36/7.37).
- Limit tests ``TestN_Config``: bit 0 active, bit 1 logic (1 AND, 0 OR), bit 2 sign (1 ">", 0 "<"), the variable
  from bit 5 (0 Ewe, 1 AUX1, 2 AUX2, 3 I); ``Exit_Cond`` 0 next step, 1 next technique, 2 stop (a MATLAB EClib
  script's comments and helao-async's tests); ``Step_number`` is the number of steps minus 1; a test after an
  inactive one is ignored (helao-async, quoting §7.37.2). |I| is compared for current tests (PyExpLabSys's
  CALIMIT example stops a discharge on "I < 1e-5"). GEIS records every dE (what easy-biologic sends; its field
  table says Record_every_dV). Amplitude_Current at most half the I range (easy-biologic: "per documentation").
- Data layouts of the SP-300 family (SP-200), 32-bit words: OCV t_high, t_low, Ewe; CA/CP/CALIMIT/CPLIMIT t_high,
  t_low, Ewe, I, cycle; PEIS/GEIS process 0 t_high, t_low, Ewe, I; process 1 freq, |Ewe|, |I|, Phase_Zwe, Ewe, I,
  -, |Ece|, |Ice|, Phase_Zce, Ece, -, -, t (easy-biologic ``data_parser.py`` SP300_Fields, helao-async ``data.py``).
Not confirmed, emulator choices: the 2 MHz frequency ceiling (the brief; research notes say up to 3 MHz), the
10 µHz floor, the 500 mA maximum current, the phase in radians, ``Frequency_number`` as the total number of
frequencies (easy-biologic: "Number of frequencies"), ``protocol_number`` as the absolute index LOOP goes back to,
which labels are optional, and how long an EIS point takes (:func:`point_duration_s`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

ERR_INVALID_PARAMETERS = -4  # ERR_GEN_INVALIDPARAMETERS
ERR_FUNCTION_FAILED = -6  # ERR_GEN_FUNCTIONFAILED
ERR_ECLAB_LOADED = -9  # ERR_GEN_ECLAB_LOADED: something else holds the channel
ERR_CHANNEL_RUNNING = -13  # ERR_GEN_CHANNEL_RUNNING
ERR_ECC_NOT_FOUND = -400  # ERR_TECH_ECCFILENOTEXISTS

TECHNIQUE_IDS = {"OCV": 100, "CA": 101, "CP": 102, "PEIS": 104, "GEIS": 107, "LOOP": 150, "CPLIMIT": 155,
                 "CALIMIT": 157}  # fmt: skip

MAX_STEPS = 20  # arrays of 20: Step_number 0..19
MAX_FREQUENCY_HZ = 2e6  # the SP-200's EIS ceiling (unconfirmed, see above)
MIN_FREQUENCY_HZ = 1e-5
MAX_CURRENT_A = 0.5  # the SP-200's largest current (unconfirmed)
I_RANGE_KEEP, I_RANGE_AUTO = -1, 12  # 0..10: 100 pA .. 1 A full scale; 11 is the booster
E_RANGES = range(4)  # ±2.5 V, ±5 V, ±10 V, auto
BANDWIDTHS = range(1, 10)
TIME_TOLERANCE_S = 1e-9
EIS_MIN_MEASURE_S = 0.1  # model: each measure integrates whole periods for at least this long


class TechniqueRefused(Exception):
    """What EClib refuses, with its error ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (EClib error {code})")
        self.code = code
        self.message = message


class CellHeld(TechniqueRefused):
    """Another emulated instrument drives the cell, so this one may not (the -9 class: "EC-Lab holds it")."""

    def __init__(self, message: str) -> None:
        super().__init__(ERR_ECLAB_LOADED, message)


def _refuse(message: str) -> TechniqueRefused:
    return TechniqueRefused(ERR_INVALID_PARAMETERS, message)


class Label(NamedTuple):
    kind: type  # float (single), int (int32) or bool
    array: bool  # one value per step (indices 0..19)
    required: bool = True


_F, _I, _B = Label(float, False), Label(int, False), Label(bool, False)
_FA, _BA = Label(float, True), Label(bool, True)
_OPT_I, _OPT_IA = Label(int, False, False), Label(int, True, False)
_RANGES = {"E_Range": _OPT_I, "Bandwidth": _OPT_I}
_STEPS = {"vs_initial": _BA, "Duration_step": _FA, "Step_number": _I, "Record_every_dT": _F, "N_Cycles": _I}
_CA = {"Voltage_step": _FA, **_STEPS, "Record_every_dI": _F, "I_Range": _OPT_I, **_RANGES}
_CP = {"Current_step": _FA, **_STEPS, "Record_every_dE": _F, "I_Range": _I, **_RANGES}
_TESTS = {f"Test{n}_{part}": Label(kind, True, n == 1) for n in (1, 2, 3) for part, kind in (("Config", int),
                                                                                            ("Value", float))}
_EIS = {"vs_initial": _B, "vs_final": _B, "Duration_step": _F, "Step_number": _I, "Record_every_dT": _F,
        "Final_frequency": _F, "Initial_frequency": _F, "sweep": _B, "Frequency_number": _I, "Average_N_times": _I,
        "Correction": _B, "Wait_for_steady": _F, **_RANGES}  # fmt: skip
LABELS: dict[str, dict[str, Label]] = {
    "OCV": {"Rest_time_T": _F, "Record_every_dE": _F, "Record_every_dT": _F, **_RANGES},
    "CA": _CA,
    "CP": _CP,
    "CALIMIT": {**_CA, **_TESTS, "Exit_Cond": _OPT_IA},
    "CPLIMIT": {**_CP, **_TESTS, "Exit_Cond": _OPT_IA},
    "PEIS": {**_EIS, "Initial_Voltage_step": _F, "Final_Voltage_step": _F, "Record_every_dI": _F,
             "Amplitude_Voltage": _F, "I_Range": _OPT_I},
    "GEIS": {**_EIS, "Initial_Current_step": _F, "Final_Current_step": _F, "Record_every_dE": _F,
             "Amplitude_Current": _F, "I_Range": _I},
    "LOOP": {"loop_N_times": _I, "protocol_number": _I},
}  # fmt: skip

# Data layouts: (column, kind); a "time" column is two words (t_high, t_low), the others one.
TIME, SINGLE, INT = "time", "single", "int"
Column = tuple[str, str]
OCV_COLUMNS: tuple[Column, ...] = (("t", TIME), ("Ewe", SINGLE))
DC_COLUMNS: tuple[Column, ...] = (("t", TIME), ("Ewe", SINGLE), ("I", SINGLE), ("cycle", INT))
EIS_WAIT_COLUMNS: tuple[Column, ...] = (("t", TIME), ("Ewe", SINGLE), ("I", SINGLE))
EIS_SWEEP_COLUMNS: tuple[Column, ...] = (
    ("freq", SINGLE), ("abs_Ewe", SINGLE), ("abs_I", SINGLE), ("Phase_Zwe", SINGLE), ("Ewe", SINGLE), ("I", SINGLE),
    ("-", INT), ("abs_Ece", SINGLE), ("abs_Ice", SINGLE), ("Phase_Zce", SINGLE), ("Ece", SINGLE), ("-", INT),
    ("-", INT), ("t", SINGLE),
)  # fmt: skip


def words(columns: tuple[Column, ...]) -> int:
    """32-bit words one row of ``columns`` takes in the data buffer (OCV 3, CA/CP 5, EIS 4 and 14)."""
    return sum(2 if kind == TIME else 1 for _, kind in columns)


@dataclass(frozen=True)
class LimitTest:
    current: bool  # |I| (A) if True, else Ewe (V)
    above: bool  # hit when the value is > ``value`` (else <)
    and_next: bool  # combined with the next active test by AND (else OR)
    value: float

    def hit(self, ewe_V: float, current_A: float) -> bool:
        x = abs(current_A) if self.current else ewe_V
        return x > self.value if self.above else x < self.value


@dataclass(frozen=True)
class Step:
    value: float  # V (CA) or A (CP)
    vs_initial: bool  # relative to the technique's starting Ewe (CA) or I (CP)
    duration_s: float
    tests: tuple[LimitTest, ...] = ()
    exit_cond: int = 0  # what a limit does: 0 next step, 1 next technique, 2 stop

    def limit_hit(self, ewe_V: float, current_A: float) -> bool:
        if not self.tests:
            return False
        hit = self.tests[0].hit(ewe_V, current_A)
        for before, test in zip(self.tests, self.tests[1:], strict=False):
            hit = (hit and test.hit(ewe_V, current_A)) if before.and_next else (hit or test.hit(ewe_V, current_A))
        return hit


@dataclass(frozen=True)
class Ocv:
    name: str
    rest_s: float
    record_dT: float
    record_dE: float


@dataclass(frozen=True)
class Steps:
    """CA, CP, CALIMIT, CPLIMIT: ``steps`` at constant voltage (``control`` "E") or current ("I"), N_Cycles + 1 times."""

    name: str
    control: str
    steps: tuple[Step, ...]
    cycles: int
    record_dT: float
    record_dX: float  # dI (CA) or dE (CP)
    max_current_A: float


@dataclass(frozen=True)
class Eis:
    """PEIS ("E") or GEIS ("I"): hold ``dc`` for ``duration_s``, then sweep ``frequencies``."""

    name: str
    control: str
    dc: float
    vs_initial: bool
    duration_s: float
    record_dT: float
    record_dX: float
    frequencies: tuple[float, ...]
    amplitude: float  # V (PEIS) or A (GEIS)
    average: int
    wait_periods: float
    max_current_A: float

    @property
    def open_circuit(self) -> bool:
        """No DC set-point of its own: PEIS at the starting potential (vs_initial, 0 V), or GEIS at 0 A."""
        return self.dc == 0 and self.vs_initial == (self.control == "E")


@dataclass(frozen=True)
class Loop:
    name: str
    times: int
    goto: int  # index of the technique to go back to


Technique = Ocv | Steps | Eis | Loop


def technique_id(technique: Technique) -> int:
    return TECHNIQUE_IDS[technique.name]


def columns(technique: Technique, process: int) -> tuple[Column, ...]:
    """The layout of ``technique``'s rows of ``process`` (EIS: 0 while waiting, 1 per frequency)."""
    if isinstance(technique, Ocv):
        return OCV_COLUMNS
    return DC_COLUMNS if isinstance(technique, Steps) else (EIS_WAIT_COLUMNS, EIS_SWEEP_COLUMNS)[process]


def parse(name: str, params: dict[str, object]) -> Technique:
    """The technique ``name`` (OCV, CA, CP, CALIMIT, CPLIMIT, PEIS, GEIS, LOOP) with ``params`` (label -> value, a
    list for per-step labels); TechniqueRefused for an unknown technique, label or type, or a value it refuses."""
    if name not in LABELS:
        raise TechniqueRefused(ERR_ECC_NOT_FOUND, f"no technique {name!r}; the emulator has {', '.join(LABELS)}")
    p = _check_labels(name, LABELS[name], params)
    if name == "OCV":
        return Ocv(name, _at_least(p, "Rest_time_T", 0), _at_least(p, "Record_every_dT", 0),
                   _at_least(p, "Record_every_dE", 0))
    if name == "LOOP":
        return Loop(name, int(_at_least(p, "loop_N_times", 0)), int(_at_least(p, "protocol_number", 0)))
    if name in ("PEIS", "GEIS"):
        return _eis(name, p)
    return _steps(name, p)


def _check_labels(name: str, table: dict[str, Label], params: dict[str, object]) -> dict[str, object]:
    values: dict[str, object] = {}
    for label, value in params.items():
        spec = table.get(label)
        if spec is None:
            near = [known for known in table if known.lower() == label.lower()]
            hint = f" (labels are case-sensitive: {near[0]!r})" if near else ""
            raise _refuse(f"{name} has no parameter {label!r}{hint}")
        items = list(value) if spec.array and isinstance(value, list | tuple) else [value]
        if not 1 <= len(items) <= (MAX_STEPS if spec.array else 1):
            raise _refuse(f"{name} {label}: {len(items)} values, at most {MAX_STEPS if spec.array else 1}")
        for item in items:
            if type(item) is not spec.kind or (spec.kind is float and not math.isfinite(item)):  # type: ignore[arg-type]
                raise _refuse(f"{name} {label} is {spec.kind.__name__}, got {item!r}")
            if spec.kind is int and not -(2**31) <= item < 2**31:  # type: ignore[operator]
                raise _refuse(f"{name} {label} is an int32, got {item!r}")
        values[label] = items if spec.array else items[0]
    missing = [label for label, spec in table.items() if spec.required and label not in values]
    if missing:
        raise _refuse(f"{name} is missing {', '.join(missing)}")
    if values.get("E_Range", 0) not in E_RANGES or values.get("Bandwidth", 1) not in BANDWIDTHS:
        raise _refuse(f"{name}: E_Range is 0..3 and Bandwidth 1..9, got {values.get('E_Range')}, "
                      f"{values.get('Bandwidth')}")
    return values


def _at_least(p: dict[str, object], label: str, low: float) -> float:
    value = p[label]
    assert isinstance(value, int | float)
    if value < low:
        raise _refuse(f"{label} must be >= {low:g}, got {value!r}")
    return value


def _max_current(name: str, p: dict[str, object], controls_current: bool) -> float:
    """The full scale of I_Range, A; current control needs a fixed range (no auto, keep or booster)."""
    i_range = p.get("I_Range", I_RANGE_AUTO)
    assert isinstance(i_range, int)
    if i_range in (I_RANGE_AUTO, I_RANGE_KEEP) and not controls_current:
        return MAX_CURRENT_A
    if not 0 <= i_range <= 10:
        raise _refuse(f"{name}: I_Range {i_range} is not allowed here (a fixed range 0..10"
                      f"{'' if controls_current else ', auto 12 or keep -1'}; no booster)")
    return min(100e-12 * 10**i_range, MAX_CURRENT_A)


def _steps(name: str, p: dict[str, object]) -> Steps:
    control = "E" if name.startswith("CA") else "I"
    n = int(p["Step_number"])  # type: ignore[call-overload]
    if not 0 <= n < MAX_STEPS:
        raise _refuse(f"{name} Step_number is the number of steps minus 1, 0..{MAX_STEPS - 1}, got {n}")
    value_label = "Voltage_step" if control == "E" else "Current_step"
    arrays = [value_label, "vs_initial", "Duration_step"] + [f"Test{k}_{part}" for k in (1, 2, 3) for part in
                                                             ("Config", "Value") if f"Test{k}_{part}" in p]
    arrays += ["Exit_Cond"] if "Exit_Cond" in p else []
    short = [label for label in arrays if len(p[label]) <= n]  # type: ignore[arg-type]
    if short:
        raise _refuse(f"{name}: {', '.join(short)} need {n + 1} values (Step_number {n})")
    max_current = _max_current(name, p, control == "I")
    steps = []
    for k in range(n + 1):
        value, duration = p[value_label][k], p["Duration_step"][k]  # type: ignore[index]
        if duration < 0:
            raise _refuse(f"{name} Duration_step[{k}] must be >= 0, got {duration}")
        if control == "I" and abs(value) > max_current:
            raise _refuse(f"{name} Current_step[{k}] {value:g} A is beyond the I_Range ({max_current:g} A)")
        exit_cond = p["Exit_Cond"][k] if "Exit_Cond" in p else 0  # type: ignore[index]
        if exit_cond not in (0, 1, 2):
            raise _refuse(f"{name} Exit_Cond[{k}] is 0 (next step), 1 (next technique) or 2 (stop), got {exit_cond}")
        steps.append(Step(value, p["vs_initial"][k], duration, _tests(name, p, k), exit_cond))  # type: ignore[index]
    dx = "Record_every_dI" if control == "E" else "Record_every_dE"
    return Steps(name, control, tuple(steps), int(_at_least(p, "N_Cycles", 0)), _at_least(p, "Record_every_dT", 0),
                 _at_least(p, dx, 0), max_current)


def _tests(name: str, p: dict[str, object], k: int) -> tuple[LimitTest, ...]:
    """Step ``k``'s active limit tests, in order; those after an inactive one are ignored."""
    tests = []
    for n in (1, 2, 3):
        if f"Test{n}_Config" not in p:
            break
        config, value = p[f"Test{n}_Config"][k], p[f"Test{n}_Value"][k]  # type: ignore[index]
        if not config & 1:
            break
        variable = config >> 5
        if config & 0b11000 or variable > 3:
            raise _refuse(f"{name} Test{n}_Config[{k}] = {config}: unknown bits (bit 0 active, 1 AND, 2 '>', "
                          "variable from bit 5)")
        if variable in (1, 2):
            raise _refuse(f"{name} Test{n}_Config[{k}] tests AUX{variable}: the emulated channel has no "
                          "auxiliary inputs")
        tests.append(LimitTest(variable == 3, bool(config & 4), bool(config & 2), value))
    return tuple(tests)


def _eis(name: str, p: dict[str, object]) -> Eis:
    control = "E" if name == "PEIS" else "I"
    f_initial, f_final = p["Initial_frequency"], p["Final_frequency"]
    for label, f in (("Initial_frequency", f_initial), ("Final_frequency", f_final)):
        if not MIN_FREQUENCY_HZ <= f <= MAX_FREQUENCY_HZ:  # type: ignore[operator]
            raise _refuse(f"{name} {label} {f:g} Hz is outside the SP-200's {MIN_FREQUENCY_HZ:g} Hz .. "
                          f"{MAX_FREQUENCY_HZ:g} Hz")
    count = int(_at_least(p, "Frequency_number", 1))
    average = int(_at_least(p, "Average_N_times", 1))
    max_current = _max_current(name, p, control == "I")
    amplitude_label = "Amplitude_Voltage" if control == "E" else "Amplitude_Current"
    amplitude = p[amplitude_label]
    assert isinstance(amplitude, float)
    if amplitude <= 0 or (control == "I" and amplitude > max_current / 2):
        raise _refuse(f"{name} {amplitude_label} must be > 0{' and at most half the I_Range' * (control == 'I')}, "
                      f"got {amplitude:g}")
    dc = p["Initial_Voltage_step" if control == "E" else "Initial_Current_step"]
    assert isinstance(dc, float)
    if control == "I" and abs(dc) + amplitude > max_current:
        raise _refuse(f"{name} Initial_Current_step {dc:g} A and its amplitude exceed the I_Range ({max_current:g} A)")
    frequencies = sweep_frequencies(f_initial, f_final, count, linear=bool(p["sweep"]))  # type: ignore[arg-type]
    dx = "Record_every_dI" if control == "E" else "Record_every_dE"
    return Eis(name, control, dc, bool(p["vs_initial"]), _at_least(p, "Duration_step", 0),
               _at_least(p, "Record_every_dT", 0), _at_least(p, dx, 0), frequencies, amplitude, average,
               _at_least(p, "Wait_for_steady", 0), max_current)


def sweep_frequencies(initial_Hz: float, final_Hz: float, count: int, *, linear: bool) -> tuple[float, ...]:
    """``count`` frequencies from ``initial_Hz`` to ``final_Hz`` (both included), evenly spaced on a log scale
    (``sweep`` False) or a linear one (True)."""
    if count == 1:
        return (initial_Hz,)
    if linear:
        return tuple(initial_Hz + (final_Hz - initial_Hz) * k / (count - 1) for k in range(count))
    return tuple(initial_Hz * (final_Hz / initial_Hz) ** (k / (count - 1)) for k in range(count))


def point_duration_s(frequency_Hz: float, average: int, wait_periods: float) -> float:
    """Bench time one EIS point takes (a model, like the 1260's ``max(IS, 3/FR)``): ``wait_periods`` periods
    (Wait_for_steady), then ``average`` measures (Average_N_times), each of whole periods lasting at least
    ``EIS_MIN_MEASURE_S``."""
    periods = max(1, math.ceil(EIS_MIN_MEASURE_S * frequency_Hz - 1e-6))  # 1e-6: 1000.0000000000001 Hz is 1 kHz
    return (wait_periods + average * periods) / frequency_Hz


class Sampler:
    """When a row is due: at once, then every ``dT`` seconds or when the watched value moved by ``dX`` (0: never)."""

    def __init__(self, dT: float, dX: float) -> None:
        self.dT, self.dX = dT, dX
        self._t: float | None = None
        self._x = 0.0

    def due_in(self, t: float) -> float:
        return self._t + self.dT - t if self.dT > 0 and self._t is not None else math.inf

    def take(self, t: float, x: float, force: bool = False) -> bool:
        """Whether a row is due at ``t`` with the watched value ``x`` (or ``force``d); if so, it is taken."""
        due = (force or self._t is None or (self.dT > 0 and t >= self._t + self.dT - TIME_TOLERANCE_S)
               or (self.dX > 0 and abs(x - self._x) >= self.dX))
        if due:
            self._t, self._x = t, x
        return due
