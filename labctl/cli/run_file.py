"""Run files: a run request written down once as TOML, then run or queued by its path (users may know them as
protocol files; the format is the same)::

    procedure = "ccd"
    bench = "sim"               # or a bench file, relative to this file
    channel = 1
    cell = "Ag"                 # sim benches: the virtual cell's preset
    seed = 3
    [params]
    cell_id = "Ag-7"
    stop_density = 1.0
    [limits]                    # safety limits of this run (labctl/safety.py), on top of the bench's
    voltage_max_V = 0.5

`labctl run FILE.toml` and `labctl queue add FILE.toml` take it where they take a procedure name; options given on
the command line win over the file's (``-p`` over ``[params]``, ``--limit`` over ``[limits]``, name by name).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from labctl.request import SIM_LAYOUTS, RunRequest

SUFFIX = ".toml"
FIELDS = ("procedure", "bench", "cell", "seed", "channel", "params", "limits")  # the schedule is the queue's
_TYPE_WORDS = {"string_type": "str", "int_type": "int", "dict_type": "dict", "float_type": "number",
               "model_type": "table"}  # pydantic error type -> TOML's word


class RunFileError(ValueError):
    """A run file that cannot be used; the message names the file, the field and the fix."""


def request_of(argument: str) -> RunRequest:
    """A procedure name as a request of its own, or the request in a ``.toml`` run file."""
    if not argument.endswith(SUFFIX):
        return RunRequest(procedure=argument)
    return load_run_file(Path(argument))


def load_run_file(path: Path) -> RunRequest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path}: no such protocol file; give a procedure name or the path of a {SUFFIX} run "
                           "file") from None
    except UnicodeDecodeError as e:
        raise RunFileError(f"{path}: not UTF-8 text ({e}); save the run file as UTF-8") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RunFileError(f"{path}: not a readable TOML file ({e})") from None
    for key in data:
        if key not in FIELDS:
            raise RunFileError(f"{path}: unknown field {key!r}; fields are {', '.join(FIELDS)}")
    if "procedure" not in data:
        raise RunFileError(f'{path}: no procedure; add e.g. procedure = "ccd" (`labctl procedures` lists them)')
    if isinstance(data.get("bench"), str) and data["bench"] not in SIM_LAYOUTS:
        data["bench"] = str((path.parent / data["bench"]).expanduser().resolve())
    if isinstance(data.get("params"), dict):
        data["params"] = {name: _text(value) for name, value in data["params"].items()}
    try:
        return RunRequest.model_validate(data, strict=True)  # strict: a TOML true is no channel number
    except ValidationError as e:
        raise RunFileError(f"{path}: {_first_problem(e, data)}") from None


def _first_problem(error: ValidationError, data: dict[str, Any]) -> str:
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"])  # e.g. limits.voltage_max_V
    if problem["type"] in _TYPE_WORDS:
        return f"{key} = {problem['input']!r} should be a {_TYPE_WORDS[problem['type']]}"
    return f"{key} = {problem['input']!r}: {problem['msg'].removeprefix('Value error, ').lower()}"


def _text(value: Any) -> str:
    """A TOML value as the text ``-p name=value`` would give (booleans as PyMeasure reads them)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
