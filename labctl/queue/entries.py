"""Turn a ``labctl queue add`` request into checked queue entries, or refuse it naming the field and the fix.

Everything a run would refuse at its start (unknown procedure, bad parameter, missing or invalid bench, a role
the bench lacks, a channel it does not have) is refused here, so nothing bad waits in the queue until night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from labctl.bench import BenchConfig, BenchError, load_config
from labctl.queue.db import Entry, QueueDB, QueueError, iso


@dataclass(frozen=True)
class Request:
    """What ``labctl queue add`` was given; ``count`` > 1 makes one entry per channel from ``channel`` on."""

    procedure: str
    bench: str = "sim"
    params: tuple[str, ...] = ()
    cell: str | None = None
    seed: int | None = None
    channel: int | None = None
    count: int = 1
    not_before: datetime | None = None
    after: int | None = None
    rest_s: float = 0.0
    hold: bool = False


def plan(request: Request, queue: QueueDB) -> list[Entry]:
    """The entries for ``request``; QueueError if any part of it is wrong (nothing is queued then)."""
    from labctl.procedures import PROCEDURES, ParameterError
    from labctl.procedures.base import parse_params, set_parameters

    if request.procedure not in PROCEDURES:
        raise QueueError(f"procedure: unknown {request.procedure!r}; procedures are {', '.join(PROCEDURES)}")
    procedure = PROCEDURES[request.procedure]()
    try:
        values = parse_params(request.params)
        set_parameters(procedure, values)
    except ParameterError as e:
        raise QueueError(f"--param {e}") from None
    bench = request.bench if request.bench == "sim" else str(Path(request.bench).expanduser().resolve())
    try:
        config = load_config(bench)
    except BenchError as e:
        raise QueueError(str(e)) from None
    _check_roles(config, procedure.ROLES, request.procedure)
    _check_sim(config, request)
    if request.count < 1:
        raise QueueError(f"--count: {request.count}; give the number of cells, 1 or more")
    if request.rest_s < 0:
        raise QueueError(f"--rest: {request.rest_s:g} s; a rest cannot be negative")
    if request.after is not None and queue.get(request.after) is None:
        raise QueueError(f"--after: no queue entry {request.after}; `labctl queue list` shows the entries")
    channels = _channels(config, request, "cycler" in procedure.ROLES)
    cell_id = values.get("cell_id", procedure.cell_id)
    entries = []
    for n, channel in enumerate(channels, start=1):
        params = dict(values) | {"cell_id": f"{cell_id}-{n}" if request.count > 1 else cell_id}
        entries.append(Entry(
            procedure=request.procedure, bench=bench, params=params, claims=claims(config, procedure.ROLES, channel),
            cell=request.cell, seed=request.seed, channel=channel, state="held" if request.hold else "queued",
            not_before=iso(request.not_before) if request.not_before else None, after=request.after,
            rest_s=request.rest_s,
        ))  # fmt: skip
    return entries


def claims(config: BenchConfig, roles: tuple[str, ...], channel: int | None) -> list[str]:
    """The instruments a run holds: each role's resource, the cycler's with its channel. A simulated bench is
    claimed by name, as if every run on it shared one bench (``cycler@sim#3``, ``impedance@sim``)."""
    result = []
    for role in roles:
        resource = config.name if config.sim is not None else config.roles[role].resource
        result.append(f"{role}@{resource}" + (f"#{channel}" if role == "cycler" else ""))
    return result


def _check_roles(config: BenchConfig, roles: tuple[str, ...], procedure: str) -> None:
    if config.sim is not None:
        return  # a simulated bench has every role
    for role in roles:
        if role not in config.roles:
            raise QueueError(f"--bench: bench {config.name!r} has no {role} role, which {procedure} needs; add a "
                             f"[roles.{role}] table to the bench file")


def _check_sim(config: BenchConfig, request: Request) -> None:
    if config.sim is None:
        if request.cell is not None or request.seed is not None:
            raise QueueError(f"--cell/--seed: bench {config.name!r} is not simulated; these options apply to sim "
                             "benches")
        return
    if request.cell is not None:
        from labctl.sim_instruments.catalog import KINDS

        if request.cell not in KINDS:
            raise QueueError(f"--cell: unknown cell {request.cell!r}; the simulated cells are {', '.join(KINDS)}")


def _channels(config: BenchConfig, request: Request, uses_cycler: bool) -> list[int | None]:
    if not uses_cycler:
        if request.channel is not None:
            raise QueueError(f"--channel: {request.procedure} uses no cycler; leave --channel out")
        return [None] * request.count
    configured = config.roles["cycler"].channel if "cycler" in config.roles else None
    first = request.channel if request.channel is not None else configured or 1
    last = first + request.count - 1
    limit = config.sim.channels if config.sim is not None else None
    if first < 1:
        raise QueueError(f"--channel: {first}; cycler channels count from 1")
    if limit is not None and last > limit:
        span = f"channels {first}..{last}" if request.count > 1 else f"channel {first}"
        raise QueueError(f"--channel: {span} not on bench {config.name!r}, whose cycler has channels 1..{limit}; "
                         "choose another --channel or a smaller --count")
    return list(range(first, last + 1))
