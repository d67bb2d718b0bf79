"""What every labctl procedure shares: the cell description, the bench it runs on, clear parameter errors."""

from __future__ import annotations

import math
from typing import Any

from pymeasure.experiment import FloatParameter, Parameter, Procedure

from labctl.roles import ResumeRefused
from labctl.text import shown, unprintable
from labctl.units import area_from_diameter_cm2


class ParameterError(ValueError):
    """A parameter value that cannot be used; the message names the parameter and the fix.

    ``fields`` are the parameters to fix ("" if none: a text that is no ``name=value``). Without them, they are
    the names the message starts with (``name: why`` or ``a/b: why``), the way every procedure's check words it.
    """

    def __init__(self, message: str, fields: tuple[str, ...] | None = None) -> None:
        super().__init__(message)
        self.fields = fields if fields is not None else _leading_names(message)


def _leading_names(message: str) -> tuple[str, ...]:
    head, sep, _ = message.partition(": ")
    names = tuple(head.split("/")) if sep else ()
    return names if names and all(n.isidentifier() for n in names) else ("",)


class LabProcedure(Procedure):
    """A PyMeasure Procedure run by labctl's engine on a bench.

    The engine assigns ``bench`` (whose roles the procedure names in ``ROLES``) before ``startup``.
    Procedures report through ``emit``: ``"results"`` (one BDF row per sample, written to the store
    before anything shows it), ``"spectrum"`` (a whole impedance spectrum, stored likewise),
    ``"export"`` (a named text file for other programs, e.g. ZView),
    ``"event"`` (a dict with ``kind``), ``"status"`` (live values for displays), ``"progress"``
    (0-100) and ``"result"`` (the results summary).
    """

    NAME = ""
    ROLES: tuple[str, ...] = ()
    SIM_CELL: str | None = None  # the virtual cell preset that suits this procedure on a simulated bench

    cell_id = Parameter("Cell ID", default="cell-1", description="Your name for the cell under test")
    interlayer = Parameter("Interlayer", default="", description="Interlayer stack, e.g. 'Ag|Mg' (free text)")
    electrode_diameter = FloatParameter(
        "Electrode diameter", units="mm", minimum=0.1, maximum=100, default=12.0,
        description="Diameter of the smaller electrode; sets the area unless an area is given",
    )  # fmt: skip
    electrode_area = FloatParameter(
        "Electrode area", units="cm²", minimum=0, maximum=100, default=0.0,
        description="Electrode area; 0 means: compute it from the diameter",
    )  # fmt: skip
    temperature = FloatParameter("Temperature", units="°C", minimum=-100, maximum=300, default=25.0)
    pressure = FloatParameter("Stack pressure", units="MPa", minimum=0, maximum=1000, default=0.0,
                              description="Stack pressure during the test; 0 if not recorded")
    film_run = Parameter("Film run", default="",
                         description="Run id of the deposition run that made the interlayer ('' if none)")

    bench: Any = None

    @property
    def area_cm2(self) -> float:
        return self.electrode_area or area_from_diameter_cm2(self.electrode_diameter)

    def check(self) -> None:
        """Cross-parameter checks, run before any instrument is touched. Raise ParameterError."""

    def check_bench(self, bench: Any) -> None:
        """Checks of the parameters against the opened bench (an analyzer's frequency range), run before the run is
        created. Raise BenchError naming the parameter."""

    def roles_needed(self) -> dict[str, str]:
        """The roles these parameters need beyond ``ROLES``, each with the fix to give when a bench lacks it (a
        queued entry is refused at ``add``, a run before it is created)."""
        return {}

    def describe_parameters(self) -> dict[str, dict[str, Any]]:
        """Every parameter with its label, value and units, for run metadata."""
        return {
            name: {"label": p.name, "value": getattr(self, name), "units": getattr(p, "units", None)}
            for name, p in self.parameter_objects().items()
        }

    def cell(self) -> dict[str, Any]:
        return {
            "id": self.cell_id, "interlayer": self.interlayer, "area_cm2": self.area_cm2,
            "temperature_C": self.temperature, "pressure_MPa": self.pressure, "film_run": self.film_run,
        }  # fmt: skip

    def estimated_duration_s(self) -> float:
        return math.inf

    def resume_from(self, rows: Any, events: list[dict[str, Any]], last_written: float) -> None:
        """Rebuild a crashed run's state from its stored rows and events (see ``CyclingProcedure``); ResumeRefused
        for procedures that cannot go on where they stopped."""
        raise ResumeRefused(f"{self.NAME} runs cannot be resumed; only ccd runs can")

    def suspend(self) -> None:
        """Leave the instruments safe when the process is told to terminate; a resumable procedure keeps its test."""
        self.shutdown()

    def sim_defaults(self) -> dict[str, Any]:
        """What a simulated bench should put in its cell holder for this procedure."""
        return {"area_cm2": self.area_cm2} | ({"cell": self.SIM_CELL} if self.SIM_CELL else {})


def parse_params(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``name=value`` texts (``-p`` options) as a dict; later ones win."""
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"{item!r}: write it as name=value, e.g. -p stop_density=1.5", ("",))
        values[key.strip()] = value.strip()
    return values


def set_parameters(procedure: LabProcedure, values: dict[str, str]) -> None:
    """Set parameters from text (``name=value`` pairs from a CLI or a form), naming any bad one."""
    objects = procedure.parameter_objects()
    for name, text in values.items():
        if name not in objects:
            known = ", ".join(sorted(objects))
            raise ParameterError(f"{name}: not a parameter of {procedure.NAME}; parameters are {known}", ("",))
        p = objects[name]
        if unprintable(text):
            raise ParameterError(f"{name}: {shown(text)!r} holds control "
                                 "characters or bytes that are not UTF-8 text; type it again as plain text, or save "
                                 "the run file as UTF-8", (name,))
        try:
            p.value = text
            if isinstance(p.value, float) and not math.isfinite(p.value):  # NaN slips past a minimum/maximum check
                raise ValueError("not a finite number")
        except ValueError as e:
            raise ParameterError(f"{name}: {text!r} is not accepted ({_why(p, e)})", (name,)) from None
        setattr(procedure, name, p.value)
    procedure.check()


def _why(p: Parameter, e: ValueError) -> str:
    units = getattr(p, "units", None) or ""
    if hasattr(p, "minimum"):
        return f"give a number from {p.minimum:g} to {p.maximum:g} {units}".rstrip()
    if hasattr(p, "choices"):
        return "choose one of " + ", ".join(map(str, p.choices))
    return str(e)
