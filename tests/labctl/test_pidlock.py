"""The pid lock: one holder at a time, named to the others; gone with its process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labctl import pidlock


def test_a_second_holder_is_told_the_first_ones_pid_and_the_lock_frees_when_closed(tmp_path):
    path = tmp_path / "x.lock"
    held = pidlock.hold(path)
    assert path.read_text() == str(os.getpid())
    with pytest.raises(pidlock.LockHeld) as refused:
        pidlock.hold(path)  # another open file description: flock refuses it as it would another process
    assert refused.value.pid == str(os.getpid())
    held.close()
    pidlock.hold(path).close()  # free again


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    path = tmp_path / "x.lock"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; from labctl import pidlock; "
                              f"f = pidlock.hold(Path({str(path)!r})); print('held', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(pidlock.LockHeld) as refused:
        pidlock.hold(path)
    assert refused.value.pid == str(child.pid)
    child.kill()
    child.wait()
    pidlock.hold(path).close()
