"""A run request: what one run is (procedure, bench, channel, sim cell and seed, parameters, safety limits) and
when it may start. A run file, a queue row, the ``labctl run`` child the daemon starts and the GUI's form all carry this
one shape; each surface only words its errors (``--channel`` on the command line, a red line under the field
in the GUI).

Parameters are text, as ``-p name=value`` gives them and PyMeasure reads them, in the units the procedure
declares (``labctl procedures NAME`` lists them); the procedure checks them when the request is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labctl.safety import LimitError, Limits, limits_of

if TYPE_CHECKING:
    from labctl.procedures import LabProcedure

SIM_BENCH = "sim"
# the built-in simulated benches: Arbin + Solartron 1260, the SP-200 alone, Arbin + SP-200 (Sandoval et al.)
SIM_LAYOUTS = {SIM_BENCH: "none", "sim-sp200": "alone", "sim-arbin-sp200": "impedance"}
RULES = {"seed": "a random seed is a whole number, 0 or more", "channel": "channels count from 1"}  # by field


class RequestError(ValueError):
    """A request that cannot run: ``fields`` are the request fields to fix (several when they conflict),
    ``detail`` says why and how, in words that name no command-line option or form label."""

    def __init__(self, fields: str | tuple[str, ...], detail: str) -> None:
        self.fields = (fields,) if isinstance(fields, str) else fields
        self.detail = detail
        super().__init__(f"{'/'.join(self.fields)}: {detail}")


def request_error(error: ValidationError) -> RequestError:
    """The first problem pydantic found, as a RequestError naming its field."""
    problem = error.errors()[0]
    field = str(problem["loc"][0])
    return RequestError(field, f"{problem['input']!r}: {RULES.get(field, problem['msg'].lower())}")


class Schedule(BaseModel):
    """When a queued run may start: not before ``not_before``, and ``rest_s`` after entry ``after`` ended."""

    model_config = ConfigDict(extra="forbid")

    not_before: datetime | None = None
    after: int | None = None
    rest_s: float = Field(default=0.0, ge=0)


class RunRequest(BaseModel):
    """One run, as every surface describes it. ``bench`` is ``sim`` or a bench file's path."""

    model_config = ConfigDict(extra="forbid")

    procedure: str
    bench: str = SIM_BENCH
    params: dict[str, str] = Field(default_factory=dict)
    cell: str | None = None
    seed: int | None = Field(default=None, ge=0)  # numpy seeds its generators from non-negative integers only
    channel: int | None = Field(default=None, ge=1)  # channels count from 1
    schedule: Schedule = Field(default_factory=Schedule)
    limits: Limits = Field(default_factory=Limits)  # the run's safety limits, on top of the bench's (labctl/safety.py)

    def with_options(self, *, bench: str | None = None, params: dict[str, str] | None = None,
                     cell: str | None = None, seed: int | None = None, channel: int | None = None,
                     limits: dict[str, float] | None = None) -> RunRequest:
        """This request with the given options on top: those given win, parameters and limits name by name."""
        given = {"bench": bench, "cell": cell, "seed": seed, "channel": channel}
        update = {"params": self.params | (params or {}), **{k: v for k, v in given.items() if v is not None}}
        try:
            update["limits"] = limits_of(self.limits.given() | (limits or {}))
            return RunRequest.model_validate(self.model_dump() | update)
        except LimitError as e:
            raise RequestError("limits", str(e)) from None
        except ValidationError as e:
            raise request_error(e) from None

    def build(self) -> LabProcedure:
        """The procedure with its parameters set and cross-checked; RequestError for an unknown procedure,
        ParameterError (naming the parameter) for a bad value."""
        from labctl.procedures import PROCEDURES
        from labctl.procedures.base import set_parameters

        if self.procedure not in PROCEDURES:
            raise RequestError("procedure", f"unknown {self.procedure!r}; procedures are {', '.join(PROCEDURES)}")
        procedure = PROCEDURES[self.procedure]()
        set_parameters(procedure, self.params)
        return procedure

    def run_arguments(self) -> list[str]:
        """The ``labctl run`` arguments of this request: what an operator would type to start it by hand."""
        args = [self.procedure, "--bench", self.bench]
        for name, value in self.params.items():
            args += ["-p", f"{name}={value}"]
        for option, value in (("--cell", self.cell), ("--seed", self.seed), ("--channel", self.channel)):
            if value is not None:
                args += [option, str(value)]
        for name, limit in self.limits.given().items():
            args += ["--limit", f"{name}={limit!r}"]
        return args
