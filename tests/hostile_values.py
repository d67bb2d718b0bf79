"""Bad values for every parameter of every procedure, by the parameter's kind, and what a clean refusal is.

Shared by ``tests/labctl/test_parameter_sweep.py`` (Hypothesis strategies) and ``benchmarks/hostile_sweep.py``
(the same values, counted). Both load this module from its file (the suite imports by path).

Kinds come from the parameter classes, so a parameter added later is swept without listing it: numbers
(``FloatParameter``, ``IntegerParameter``), ``BooleanParameter``, ``ListParameter`` (choices) and plain
``Parameter`` text. Plain text is *structured* (a circuit, a cycle list, numbers, a film stack, a run id: junk
must be refused) unless it is named in ``FREE_TEXT`` (the user's own words: anything printable is accepted and
shown as written; only control characters are bad).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymeasure.experiment import BooleanParameter, FloatParameter, IntegerParameter, ListParameter, Parameter

FREE_TEXT = frozenset({"cell_id", "interlayer"})
MARKUP = ("[bold]1[/bold]", "[/x]", "[red]", ":100:", "[link=http://127.0.0.1]x[/link]", ":battery:")
CONTROL = ("\x00", "\x1b[31m", "\x07", "\x08", "\x7f", "\x9b", "\r")  # not whitespace to str.strip()
LONG = "9" * 5000  # beyond int()'s 4300-digit limit; 1e4999 as a float
HUGE_LIST_ITEM = 1e6  # no C-rate, current density or readout time in a number list is that large

# Bugs known to accept every bad value of a parameter, by (procedure or "*", parameter, entry point or "*"), each with
# its reason: the sweeps count them apart, and test_parameter_sweep.py keeps them to a strict xfail of their own.
# Entry points: "run" (-p), "queue" (queue add -p), "file" (a run file). Issue 16's sweep emptied it.
WHOLE_PARAMETER_BUGS: dict[tuple[str, str, str], str] = {}


def kind(name: str, p: Parameter) -> str:
    """``float``, ``int``, ``bool``, ``choice``, ``text`` (structured) or ``free`` (the user's own words)."""
    for cls, word in ((BooleanParameter, "bool"), (IntegerParameter, "int"), (FloatParameter, "float"),
                      (ListParameter, "choice")):  # fmt: skip
        if isinstance(p, cls):
            return word
    return "free" if name in FREE_TEXT else "text"


def parameters() -> list[tuple[str, str, Parameter]]:
    """(procedure, parameter name, Parameter) for every parameter of every registered procedure."""
    from labctl.procedures import PROCEDURES

    found = []
    for proc, cls in PROCEDURES.items():
        found += [(proc, name, p) for name, p in cls().parameter_objects().items()]
    return found


def _num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() or abs(x) >= 1e16 else str(int(x))


def canonical_bad(name: str, p: Parameter) -> list[str]:
    """The bad values every sweep tries for parameter ``name``, as ``-p name=VALUE`` text."""
    k = kind(name, p)
    common = [*MARKUP, "", "abc", "x" * 10_000, *(f"1{c}2" for c in CONTROL)]
    if k in ("float", "int"):
        values = ["nan", "NaN", "inf", "-inf", "+Infinity", "1e400", "-1e400", LONG, f"-{LONG}", "0x10", "1,5",
                  "true", "false", "1 furlong", _num(p.minimum - max(1.0, abs(p.minimum))),
                  _num(p.maximum + max(1.0, abs(p.maximum))), "1e308", "-1e308"]
        values = [v for v in values if not _in_range(k, p, v)]
        if k == "int":
            values += ["1.5", f"{p.minimum}.5", str(p.minimum - 1), str(p.maximum + 1)]
        return values + common
    if k == "bool":
        return ["yes", "no", "2", "1.5", "nan", "truee", "tru e", "on", *common]
    if k == "choice":
        choices = list(p.choices)
        return [c.upper() for c in choices if c.upper() != c] + [c + "x" for c in choices] + \
            [f"{choices[0]}\x00", "nan", "1"] + common
    if k == "text":
        return ["nan", "inf", "1e400", "-1", "0", "1,nan", f"1,{HUGE_LIST_ITEM:g}", *MARKUP, "x" * 10_000,
                *(f"1{c}2" for c in CONTROL)]
    return [f"cell{c}1" for c in CONTROL]  # free text: only control characters are bad


def _in_range(k: str, p: Parameter, text: str) -> bool:
    """Whether ``text`` is a number ``p`` (of kind ``k``) may rightly take (so it is no bad value)."""
    try:
        value = float(text) if k == "float" else int(text)
    except (ValueError, OverflowError):
        return False
    return math.isfinite(value) and p.minimum <= value <= p.maximum


def is_bad(name: str, p: Parameter, text: str) -> bool:
    """Whether ``text`` must be refused for parameter ``name`` (generated values are filtered by this)."""
    k, value = kind(name, p), text.strip()
    if k in ("float", "int"):
        number, _, units = value.partition(" ")
        return not (units in ("", p.units) and _in_range(k, p, number))
    if k == "bool":
        return value.lower() not in ("true", "false")
    if k == "choice":
        return value not in [str(c) for c in p.choices]
    if k == "free":
        return any(unicodedata.category(c) == "Cc" for c in value)
    return True  # structured text: generators only make values no format accepts


def whole_parameter_bug(proc: str, name: str, entry: str) -> str | None:
    """Why every bad value of this parameter is accepted today through ``entry`` (a reported bug), or None."""
    for (where, parameter, through), why in WHOLE_PARAMETER_BUGS.items():
        if name == parameter and where in ("*", proc) and through in ("*", entry):
            return why
    return None


def known_bug(proc: str, name: str, text: str, entry: str = "run") -> str | None:
    """Why this bad value is accepted today (a reported bug), or None if it must be refused."""
    return whole_parameter_bug(proc, name, entry)


# --- run files ---

def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: every control character escaped (TOML forbids them raw)."""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif unicodedata.category(c) in ("Cc", "Cs") or c == "\x7f":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def run_file(folder: Path, proc: str, name: str, value: str | bytes) -> Path:
    """A run file for ``proc`` on the sim bench with ``[params] name = value`` (text as a TOML string, bytes
    written raw inside the quotes: non-UTF-8 files)."""
    path = folder / "run.toml"  # a neutral name: an error naming the file must not pass for naming the parameter
    head = f'procedure = "{proc}"\nbench = "sim"\n[params]\n{name} = '.encode()
    body = b'"' + value + b'"' if isinstance(value, bytes) else toml_string(value).encode()
    path.write_bytes(head + body + b"\n")
    return path


# --- what a clean refusal is ---

BOX = re.compile(r"[\s│╭╮╰╯─]+")  # rich wraps long lines in boxes


def flat(text: str) -> str:
    return BOX.sub("", text)


def refusal_problems(exit_code: int, output: str, names: tuple[str, ...], store: Path, *,
                     store_may_exist: bool = False, queued: Callable[[], list[Any]] | None = None) -> list[str]:
    """Why this is no clean refusal (empty: it is): exit 2, every one of ``names`` in the message, no traceback,
    no run folder (and no store at all unless ``store_may_exist``), nothing queued."""
    problems = []
    if exit_code != 2:
        problems.append(f"exit {exit_code}, not 2")
    if "Traceback" in output:
        problems.append("a traceback")
    squeezed = flat(output)
    problems += [f"{n!r} not named" for n in names if flat(n) not in squeezed]
    runs = store / "runs"
    if runs.exists() and any(runs.iterdir()):
        problems.append("a run folder was left")
    elif store.exists() and not store_may_exist and any(store.iterdir()):
        problems.append(f"the store was created ({', '.join(sorted(p.name for p in store.iterdir()))})")
    if queued is not None and (entries := queued()):
        problems.append(f"{len(entries)} queue entr{'y' if len(entries) == 1 else 'ies'} added")
    return problems
