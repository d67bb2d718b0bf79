"""How ``labctl serve`` starts a run: forked from a warm fork server, exactly a ``labctl run`` otherwise.

The fork server (multiprocessing's, started on the first run) has imported ``labctl.queue.warm``, so a run
shares the imported modules' pages with it copy-on-write instead of importing them again (~110 MB each). The
forked process then becomes what ``python -m labctl run …`` would be: its own session, stdin from /dev/null,
stdout and stderr unbuffered into the entry's log, SIGTERM when the daemon dies (Linux), and the exit code of
``labctl run``. The daemon's Popen put a parent-death signal on each run; a forked run's parent is the fork
server, which lives on while any run holds it, so the run watches the daemon itself (a pidfd).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from pathlib import Path

from labctl.store.registry import process_alive

DAEMON_POLL_S = 1.0  # where no pidfd tells when the daemon ends
WARM_MODULE = "labctl.queue.warm"  # imports RUN_MODULES in the fork server
# What ``labctl run`` imports on its way (cli.run's function-level imports and what they pull in).
RUN_MODULES = (
    "labctl.cli",
    "labctl.bench",
    "labctl.engine.runner",
    "labctl.live.feed",
    "labctl.cli.progress",
    "labctl.procedures",
    "labctl.store",
    "labctl.sim_instruments.bench",
    "labctl.queue.daemon",
)
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([WARM_MODULE])


class RunProcess:
    """A started run, answering as ``subprocess.Popen`` does (``pid``, ``poll``, ``wait``, ``send_signal``,
    ``kill``; a negative return code is the signal that ended it)."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process = process
        self.pid: int = process.pid  # type: ignore[assignment]  # set once started

    def poll(self) -> int | None:
        return self._process.exitcode

    def wait(self) -> int:
        self._process.join()
        return self._process.exitcode  # type: ignore[return-value]  # set once joined

    def send_signal(self, signum: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self._process.kill()


def start_run(arguments: list[str], log: Path, env: dict[str, str] | None = None) -> RunProcess:
    """Start ``labctl ARGUMENTS`` (e.g. ``run ccd --bench sim --store …``) as a run of this daemon, its output
    appended to ``log``, with ``env`` added to its environment. Raises OSError if it cannot be started."""
    process = _CONTEXT.Process(target=_run, args=(arguments, str(log), os.getpid(), env or {}), name="labctl-run",
                               daemon=False)  # fmt: skip
    try:
        process.start()
    except (OSError, EOFError) as e:  # EOFError: the fork server went away
        raise OSError(f"the fork server could not start the run ({e})") from e
    return RunProcess(process)


def _run(arguments: list[str], log: str, daemon: int, env: dict[str, str]) -> None:
    """The forked run: detach as a ``labctl run`` started on its own would be, then run it."""
    os.setsid()
    from labctl.engine.runner import TERMINATED_EARLY

    signal.signal(signal.SIGTERM, lambda *_: TERMINATED_EARLY.set())  # until `labctl run` takes SIGTERM itself
    _die_with_daemon(daemon)
    _redirect_output(log)
    os.environ.update(env, PYTHONUNBUFFERED="1")  # PYTHONUNBUFFERED: for whatever the run starts
    sys.argv = ["labctl", *arguments]
    from labctl.cli import app

    app(args=arguments, prog_name="labctl")


def _die_with_daemon(daemon: int) -> None:
    """SIGTERM to this run when the daemon dies, as a parent-death signal would send it to a child of the daemon
    (a forked run's parent is the fork server, which lives on while any run holds its pipe); if the daemon is
    already gone, the run is told to terminate at once (a resumed run still takes its channel over and rests it)."""
    if not process_alive(daemon):
        from labctl.engine.runner import TERMINATED_EARLY

        TERMINATED_EARLY.set()
        return
    threading.Thread(target=_watch, args=(daemon,), name="daemon-watch", daemon=True).start()


def _watch(daemon: int) -> None:
    """Wait for the daemon to end (a pidfd on Linux, else by polling), then terminate this run in order."""
    try:
        select.select([os.pidfd_open(daemon)], [], [])
    except (AttributeError, OSError):  # no pidfd here, or the daemon is already gone
        while process_alive(daemon):
            time.sleep(DAEMON_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _redirect_output(log: str) -> None:
    """stdin from /dev/null; stdout and stderr appended to ``log``, written through line by line."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
