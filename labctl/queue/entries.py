"""Turn a run request into checked queue entries, or refuse it naming the field and the fix.

Everything a run would refuse at its start (unknown procedure, bad parameter, missing or invalid bench, a role
the bench lacks, a channel it does not have) is refused here, so nothing bad waits in the queue until night.
"""

from __future__ import annotations

from pathlib import Path

from labctl.bench import BenchConfig, config_from_text, load_config
from labctl.queue.agents import Agents
from labctl.queue.db import Entry, QueueDB
from labctl.request import SIM_LAYOUTS, RequestError, RunRequest


def plan(request: RunRequest, queue: QueueDB, count: int = 1, hold: bool = False) -> list[Entry]:
    """The entries for ``request`` on ``count`` cells, one per channel from the request's on (cell ids get -1,
    -2, …), ``held`` if ``hold``. Nothing is queued when any part is wrong: RequestError or ParameterError name
    the field, BenchError the bench file's problem."""
    procedure = request.build()
    bench, config = resolve_bench(request.bench, queue)
    _check_roles(config, procedure.ROLES, request.procedure)
    _check_needed(config, procedure.roles_needed())
    _check_sim(config, request)
    if count < 1:
        raise RequestError("count", f"{count}; give the number of cells, 1 or more")
    if request.schedule.rest_s < 0:
        raise RequestError("rest_s", f"{request.schedule.rest_s:g} s; a rest cannot be negative")
    if request.schedule.after is not None and queue.get(request.schedule.after) is None:
        raise RequestError("after", f"no queue entry {request.schedule.after}; `labctl queue list` shows the entries")
    channels = _channels(config, request, count, "cycler" in procedure.ROLES)
    cell_id = request.params.get("cell_id", procedure.cell_id)
    entries = []
    for n, channel in enumerate(channels, start=1):
        params = request.params | {"cell_id": f"{cell_id}-{n}" if count > 1 else cell_id}
        entries.append(Entry(**request.model_dump(exclude={"params", "bench", "channel"}), params=params,
                             bench=bench, channel=channel, claims=claims(config, procedure.ROLES, channel),
                             state="held" if hold else "queued"))  # fmt: skip
    return entries


def resolve_bench(spec: str, queue: QueueDB) -> tuple[str, BenchConfig]:
    """An entry's bench and its config: a simulated bench, a bench file on this PC, or a bench an agent of the lab
    hosts (named by its file's path, name or stem), read from the text that agent registered."""
    if spec in SIM_LAYOUTS or Path(spec).expanduser().is_file():
        return bench_key(spec), load_config(bench_key(spec))
    for agent in Agents(queue.database).list():
        for key, text in (agent.benches or {}).items():
            if text is not None and spec in (key, Path(key).name, Path(key).stem):
                return key, config_from_text(text, f"{key} (hosted by agent {agent.name})", Path(key).stem)
    return spec, load_config(spec)  # BenchError: no such file


def bench_key(spec: str) -> str:
    """How an entry names its bench, and an agent the benches it hosts: a simulated bench's name, or the bench
    file's absolute path."""
    return spec if spec in SIM_LAYOUTS else str(Path(spec).expanduser().resolve())


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
            raise RequestError("bench", f"bench {config.name!r} has no {role} role, which {procedure} needs; add a "
                                        f"[roles.{role}] table to the bench file")


def _check_needed(config: BenchConfig, needed: dict[str, str]) -> None:
    if config.sim is not None:
        return  # a simulated bench has every role
    for role, fix in needed.items():
        if role not in config.roles:
            raise RequestError("bench", f"bench {config.name!r} has no {role} role. {fix}")


def _check_sim(config: BenchConfig, request: RunRequest) -> None:
    if config.sim is None:
        if request.cell is not None or request.seed is not None:
            raise RequestError(("cell", "seed"), f"bench {config.name!r} is not simulated; a sim cell and seed "
                                                 "apply to sim benches")
        return
    if request.cell is not None:
        from labctl.sim_instruments.catalog import KINDS

        if request.cell not in KINDS:
            raise RequestError("cell", f"unknown cell {request.cell!r}; the simulated cells are {', '.join(KINDS)}")


def _channels(config: BenchConfig, request: RunRequest, count: int, uses_cycler: bool) -> list[int | None]:
    if not uses_cycler:
        if request.channel is not None:
            raise RequestError("channel", f"{request.procedure} uses no cycler; leave the channel out")
        return [None] * count
    configured = config.roles["cycler"].channel if "cycler" in config.roles else None
    first = request.channel if request.channel is not None else configured or 1
    last = first + count - 1
    limit = config.sim.channels if config.sim is not None else None
    if first < 1:
        raise RequestError("channel", f"{first}; cycler channels count from 1")
    if limit is not None and last > limit:
        span = f"channels {first}..{last}" if count > 1 else f"channel {first}"
        raise RequestError(("channel", "count") if count > 1 else "channel",
                           f"{span} not on bench {config.name!r}, whose cycler has channels 1..{limit}; choose "
                           f"another channel{' or a smaller count' if count > 1 else ''}")
    return list(range(first, last + 1))
