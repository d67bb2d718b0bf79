"""``labctl queue …`` (the run queue, from any shell on this PC) and ``labctl serve`` (the daemon that runs it).

Both talk to the store's database directly; there is no network listener.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from labctl.cli.console import err, fail, out
from labctl.cli.options import (
    BenchOption,
    CellOption,
    JsonOption,
    LimitOption,
    ParamOption,
    ProcedureArgument,
    SeedOption,
    StoreOption,
    cli_request,
    error_text,
)
from labctl.queue.db import WAITING, QueueDB, QueueError, utc_now
from labctl.store import default_root

queue_app = typer.Typer(no_args_is_help=True, help="The run queue that `labctl serve` executes.")


EntryArgument = Annotated[int, typer.Argument(help="Queue entry id (`labctl queue list` shows them)")]


def _queue(store: Path | None) -> QueueDB:
    from labctl.store import Store

    return Store(store).queue


@queue_app.command("add")
def queue_add(
    procedure: ProcedureArgument,
    bench: BenchOption = None,
    param: ParamOption = None,
    cell: CellOption = None,
    seed: SeedOption = None,
    limit: LimitOption = None,
    channel: Annotated[int | None, typer.Option(help="Cycler channel (the first one with --count)")] = None,
    count: Annotated[int, typer.Option(help="The same test on this many cells, one per channel from --channel on; "
                                       "cell ids get -1, -2, …")] = 1,
    at: Annotated[str | None, typer.Option(help="Start no earlier than this local time: HH:MM or 2026-11-22T21:00")]
    = None,
    after: Annotated[int | None, typer.Option(help="Start after this entry has ended")] = None,
    rest: Annotated[str, typer.Option(help="…and after a rest of this long: 90, 90s, 30min or 2h")] = "0",
    hold: Annotated[bool, typer.Option("--hold", help="Queue it held: it starts only after `labctl queue release`")]
    = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a run (or one per cell with --count). Everything is checked now; a bad entry is refused."""
    from labctl.bench import BenchError
    from labctl.cli.deposition import FilmError, film_of
    from labctl.cli.run_file import RunFileError
    from labctl.procedures.base import ParameterError
    from labctl.queue.entries import plan
    from labctl.request import RequestError, Schedule
    from labctl.store import Store

    queue = _queue(store)
    try:
        request = cli_request(procedure, bench=bench, params=param, cell=cell, seed=seed, channel=channel,
                              limits=limit)
        when = Schedule(not_before=parse_start(at, datetime.now().astimezone()) if at else None, after=after,
                        rest_s=parse_duration_s(rest))  # fmt: skip
        entries = plan(request.model_copy(update={"schedule": when}), queue, count=count, hold=hold)
        if film := request.params.get("film_run", "").strip():
            film_of(Store(store), film)  # as `labctl run` does: a film run that is not in the store is refused now
    except (QueueError, RunFileError, RequestError, ParameterError, BenchError, FilmError) as e:
        raise fail(error_text(e)) from None
    ids = queue.add(entries)
    if as_json:
        print(json.dumps([queue.require(i).to_dict() for i in ids], indent=2))
        return
    for entry_id, entry in zip(ids, entries, strict=True):
        out.print(Text.assemble("Queued entry ", (str(entry_id), "bold"), f": {entry.procedure}, cell "
                                f"{entry.params['cell_id']} ({entry.state}; claims {', '.join(entry.claims)})"))


@queue_app.command("list")
def queue_list(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """List entries in queue order: state, run, channel, and why it waits, how far it is, or its result."""
    from labctl.queue.daemon import daemon_pid
    from labctl.queue.view import status_text
    from labctl.store import Store

    root = store or default_root()
    queue, registry = _queue(store), Store(store, desk=True).registry  # desk: other PCs' runs' progress too
    entries, now = queue.entries(), utc_now()
    rows = []
    for e in entries:
        record = registry.get(e.run_id) if e.run_id else None
        rows.append((e, status_text(e, entries, now, Path(record.folder) if record else None)))
    if as_json:
        print(json.dumps([{**e.to_dict(), "status": text} for e, text in rows], indent=2))
        return
    table = Table("id", "state", "procedure", "ch", "cell", "run; status or result", box=box.SIMPLE_HEAD)
    for column in table.columns[:-1]:
        column.no_wrap = True  # the last column folds instead
    shared = Store(store).config.shared
    for e, text in rows:
        state = f"{e.state} ({e.agent})" if shared and e.agent and e.state not in WAITING else e.state
        cells = (str(e.id), state, e.procedure, str(e.channel or ""), e.params.get("cell_id", ""),
                 "\n".join(filter(None, (e.run_id, text))))
        table.add_row(*map(Text, cells))  # a user's cell id is never markup or emoji codes
    out.print(table)
    if shared:
        from labctl.queue.agents import Agents, agents_text

        err.print(Text(agents_text(Agents(Store(store).database).list())))
        return
    pid = daemon_pid(root)
    err.print(f"labctl serve: {'running, pid ' + str(pid) if pid else 'not running (`labctl serve` starts it)'}")


@queue_app.command("show")
def queue_show(entry_id: EntryArgument, store: StoreOption = None) -> None:
    """Show one entry in full, with the command it runs and its log file."""
    from labctl.queue.daemon import entry_log, run_command

    root = store or default_root()
    try:
        entry = _queue(store).require(entry_id)
    except QueueError as e:
        raise fail(str(e)) from None
    print(json.dumps({**entry.to_dict(), "command": run_command(entry, root)[3:], "log": str(entry_log(root, entry_id))},
                     indent=2))


@queue_app.command("move")
def queue_move(entry_id: EntryArgument, position: Annotated[int, typer.Argument(help="New place, 1 = next")],
               store: StoreOption = None) -> None:
    """Move a waiting entry to another place among the waiting ones."""
    try:
        _queue(store).move(entry_id, position)
    except QueueError as e:
        raise fail(str(e)) from None
    out.print(f"Entry {entry_id} moved to place {position}")


@queue_app.command("cancel")
def queue_cancel(entry_id: EntryArgument, store: StoreOption = None) -> None:
    """Cancel a waiting entry, or stop a running one (its channel rests and its run ends aborted)."""
    queue = _queue(store)
    try:
        entry = queue.require(entry_id)
        if entry.active:
            queue.request_stop(entry_id)
            out.print(f"Entry {entry_id}: its agent ({entry.agent}) stops its run at its next look (the channel "
                      "rests)" + (", once it is reachable again" if entry.state == "unreachable" else ""))
            return
        queue.set_waiting_state(entry_id, "cancelled")
    except QueueError as e:
        raise fail(str(e)) from None
    out.print(f"Entry {entry_id} cancelled")


@queue_app.command("hold")
def queue_hold(entry_id: EntryArgument, store: StoreOption = None) -> None:
    """Keep a waiting entry from starting until released."""
    _set_state(store, entry_id, "held")


@queue_app.command("release")
def queue_release(entry_id: EntryArgument, store: StoreOption = None) -> None:
    """Let a held entry start when it is due."""
    _set_state(store, entry_id, "queued")


def _set_state(store: Path | None, entry_id: int, state: str) -> None:
    try:
        _queue(store).set_waiting_state(entry_id, state)
    except QueueError as e:
        raise fail(str(e)) from None
    out.print(f"Entry {entry_id} {state}")


def serve(
    store: StoreOption = None,
    notify: Annotated[str | None, typer.Option(help="Shell command run as `CMD RUN_ID OUTCOME` when a run ends")]
    = None,
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background, past the terminal's closing")]
    = False,
    resume: Annotated[bool, typer.Option(help="Resume a run that died (killed, crashed, the daemon gone) where it "
                                         "stopped; --no-resume ends it interrupted")] = True,
    agent: Annotated[str | None, typer.Option(help="This agent's name in the lab (default: the PC's name)")] = None,
    bench: Annotated[list[str] | None, typer.Option(help="A bench this PC hosts (a bench file or a simulated bench; "
                                                    "repeat it); only its entries are run here. Default: every bench")]
    = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the queue", hidden=True)] = 1.0,
    detached: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run the queue as this PC's agent: start due entries of its benches as `labctl run` processes; Ctrl-C or
    SIGTERM stops them in order."""
    from labctl.lab.config import this_host
    from labctl.queue.daemon import LOGS, SERVE_LOG, Daemon, daemon_pid
    from labctl.queue.entries import bench_key
    from labctl.store import StoreError

    root = (store or default_root()).resolve()
    if pid := daemon_pid(root):
        raise fail(f"labctl serve already runs for the store {root} (pid {pid}); stop it with `kill {pid}` first, "
                    "or give another --store")
    name = _agent_name(agent or this_host())
    benches = _hosted(bench) if bench else None
    (root / LOGS).mkdir(parents=True, exist_ok=True)
    if detach:
        raise typer.Exit(_detach(root, notify, poll, resume, agent, bench or []))
    _log_to(root / LOGS / SERVE_LOG, echo=not detached)
    try:
        daemon = Daemon(root, agent=name, benches=[bench_key(b) for b in benches] if benches else None, notify=notify,
                        resume=resume, poll_s=poll)  # fmt: skip
        signal.signal(signal.SIGTERM, daemon.request_stop)
        signal.signal(signal.SIGINT, daemon.request_stop)
        daemon.serve()
    except (QueueError, StoreError) as e:
        raise fail(str(e)) from None


def _agent_name(name: str) -> str:
    from labctl.text import unprintable

    if not name.strip() or unprintable(name) or len(name) > 64:
        raise fail(f"--agent: {name!r}; give a short printable name (the PC's name is the default)")
    return name


def _hosted(benches: list[str]) -> list[str]:
    """The benches given to serve, each checked as `queue add` checks an entry's (a file that loads, or a sim)."""
    from labctl.bench import BenchError, load_config

    for bench in benches:
        try:
            load_config(bench)
        except BenchError as e:
            raise fail(str(e)) from None
    return benches


def _detach(root: Path, notify: str | None, poll: float, resume: bool, agent: str | None, benches: list[str]) -> int:
    """Start the daemon in its own session, output to its log; wait until it holds the store's lock."""
    from labctl.queue.daemon import LOGS, SERVE_LOG, daemon_pid, labctl_command

    cmd = labctl_command("serve", "--store", str(root), "--detached", "--poll", str(poll))
    cmd += ["--notify", notify] if notify else []
    cmd += [] if resume else ["--no-resume"]
    cmd += ["--agent", agent] if agent else []
    cmd += [arg for bench in benches for arg in ("--bench", bench)]
    with (root / LOGS / SERVE_LOG).open("ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while (pid := daemon_pid(root)) != proc.pid and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid != proc.pid:
        raise fail(f"labctl serve did not start; see {root / LOGS / SERVE_LOG}", code=1)
    out.print(f"labctl serve runs in the background, pid {pid}; log {root / LOGS / SERVE_LOG}; stop it with "
              f"`kill {pid}`", highlight=False)
    return 0


def _log_to(path: Path, *, echo: bool) -> None:
    logger = logging.getLogger("labctl.serve")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


_DURATION = re.compile(r"^\s*(?P<n>\d+(\.\d*)?)\s*(?P<unit>s|min|h|d)?\s*$")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str) -> float:
    m = _DURATION.match(text)
    if not m:
        raise QueueError(f"--rest: {text!r} is not a duration; write it like 90, 90s, 30min or 2h")
    return float(m["n"]) * _UNIT_S[m["unit"] or "s"]


def parse_start(text: str, now: datetime) -> datetime:
    """A start time: HH:MM (the next such local time) or an ISO date-time (local unless it gives an offset)."""
    if re.fullmatch(r"\d{1,2}:\d{2}", text.strip()):
        hour, minute = map(int, text.split(":"))
        if hour > 23 or minute > 59:
            raise QueueError(f"--at: {text!r} is not a time of day; write it like 21:30")
        start = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return (start if start > now else start + timedelta(days=1)).astimezone(UTC)
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise QueueError(f"--at: {text!r} is not a time; write it like 21:30 or 2026-11-22T21:30") from None
    return start.astimezone(UTC)  # a time without offset is local time
