"""An exclusive lock that names its holder: a file holding the pid of the process that has it ``flock``-ed.

The kernel drops the lock with the process (kill -9 included), so a dead holder never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another live process holds the lock; ``pid`` is what it wrote ("?" if nothing yet)."""

    def __init__(self, pid: str) -> None:
        super().__init__(f"held by pid {pid}")
        self.pid = pid


def hold(path: Path) -> IO[str]:
    """Take the lock on ``path`` and write this process's pid into it; it is held while the returned file stays
    open. Raises :class:`LockHeld` when another process holds it."""
    f = path.open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise LockHeld(pid) from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    return f
