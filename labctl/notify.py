"""The operator's notification hook: ``--notify CMD`` runs ``CMD RUN_ID WHAT`` in a shell, detached, its output
appended to a log file (``labctl serve`` at the end of each run, ``labctl follow`` at a short and at the end)."""

from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


def start_hook(notify: str, run_id: str, what: str, log_file: Path) -> subprocess.Popen[bytes] | None:
    """Start ``notify RUN_ID WHAT``; None (logged) if it cannot be started."""
    command = f"{notify} {shlex.quote(run_id)} {shlex.quote(what)}"
    with log_file.open("ab") as out:
        try:
            hook = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as e:
            log.error("notify: could not run %r: %s", command, e)
            return None
    log.info("notify: %s", command)
    return hook
