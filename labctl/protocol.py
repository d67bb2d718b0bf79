"""Protocol files: a test written down once (procedure, bench, parameters, cell), then run or queued by its path.

A protocol file is TOML::

    procedure = "ccd"
    bench = "sim"               # or a bench file, relative to this file
    channel = 1
    cell = "Ag"                 # sim benches: the virtual cell's preset
    seed = 3
    [params]
    cell_id = "Ag-7"
    stop_density = 1.0

`labctl run FILE.toml` and `labctl queue add FILE.toml` take it where they take a procedure name; options given on
the command line win over the file's (``-p`` over ``[params]`` name by name).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Protocol:
    procedure: str
    bench: str | None = None
    params: tuple[str, ...] = ()
    cell: str | None = None
    seed: int | None = None
    channel: int | None = None

    def overridden(self, *, bench: str | None, params: list[str] | None, cell: str | None, seed: int | None,
                   channel: int | None) -> Protocol:
        """This protocol with the command line's options on top (``name=value`` params later in the list win)."""
        given = {"bench": bench, "cell": cell, "seed": seed, "channel": channel}
        return replace(self, params=self.params + tuple(params or ()),
                       **{k: v for k, v in given.items() if v is not None})


_TYPES: dict[str, type] = {"procedure": str, "bench": str, "cell": str, "seed": int, "channel": int, "params": dict}


def protocol_of(argument: str) -> Protocol:
    """A procedure name as it is, or the protocol in a ``.toml`` file."""
    if not argument.endswith(".toml"):
        return Protocol(argument)
    return load_protocol(Path(argument))


def load_protocol(path: Path) -> Protocol:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file; give a procedure name or the path of a .toml file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ProtocolError(f"{path}: not a readable TOML file ({e})") from None
    for key, value in data.items():
        if key not in _TYPES:
            raise ProtocolError(f"{path}: unknown field {key!r}; fields are {', '.join(_TYPES)}")
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise ProtocolError(f"{path}: {key} = {value!r} should be a {_TYPES[key].__name__}")
    if "procedure" not in data:
        raise ProtocolError(f'{path}: no procedure; add e.g. procedure = "ccd" (`labctl procedures` lists them)')
    bench = data.get("bench")
    if bench is not None and bench != "sim":
        bench = str((path.parent / bench).expanduser().resolve())
    params = tuple(f"{name}={_text(value)}" for name, value in data.get("params", {}).items())
    known = {f.name for f in fields(Protocol)} - {"params", "bench"}
    return Protocol(bench=bench, params=params, **{k: v for k, v in data.items() if k in known})


def _text(value: Any) -> str:
    """A TOML value as the text ``-p name=value`` would give (booleans as PyMeasure reads them)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
