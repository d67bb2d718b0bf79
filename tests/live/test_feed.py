"""The live feed: hello counts, ordered records, slow viewers dropped rather than waited for, the socket removed."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd

from labctl.live.feed import QUEUE_LINES, FeedServer, feed_path
from labctl.store.folder import EVENTS, TIMESERIES

from .conftest import read_feed


def connect(path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def follow(path) -> tuple[list[dict], threading.Thread]:
    """A viewer that reads everything in a thread; returns its messages (filled as they come) and the thread."""
    messages: list[dict] = []
    reader = threading.Thread(target=read_feed, args=(connect(path), messages))
    reader.start()
    return messages, reader


def test_feed_path_is_a_private_directory_of_this_user(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert feed_path("r1") == tmp_path / f"labctl-{os.getuid()}" / "r1.sock"
    server = FeedServer("r1")
    try:
        assert stat.S_IMODE(os.stat(tmp_path / f"labctl-{os.getuid()}").st_mode) == 0o700
        assert stat.S_ISSOCK(os.stat(feed_path("r1")).st_mode)
    finally:
        server.close("finished")
    assert not feed_path("r1").exists()


def test_a_late_viewer_is_told_what_was_sent_then_gets_the_rest_in_order():
    run_id = f"test-{secrets.token_hex(4)}"
    server = FeedServer(run_id)
    for i in range(5):
        server.publish("sample", {"Test Time / s": float(i)})
    server.publish("event", {"kind": "segment_started"})
    messages, reader = follow(feed_path(run_id))
    while not messages:
        time.sleep(0.01)  # the hello is queued when the server accepts
    for i in range(5, 8):
        server.publish("sample", {"Test Time / s": float(i)})
    server.publish("status", {"voltage_V": 0.1})
    server.close("aborted", "stopped by the operator")
    reader.join(10)
    assert messages[0] == {"topic": "hello", "seq": 0,
                           "record": {"run_id": run_id, "sent": {"sample": 5, "event": 1, "spectrum": 0}}}
    assert [(m["topic"], m["seq"]) for m in messages[1:]] == [("sample", 5), ("sample", 6), ("sample", 7),
                                                              ("status", 0), ("end", 0)]
    assert messages[-1]["record"] == {"status": "aborted", "error": "stopped by the operator"}
    assert not feed_path(run_id).exists()


def test_a_viewer_that_does_not_read_is_dropped_and_the_others_get_everything():
    run_id = f"test-{secrets.token_hex(4)}"
    server = FeedServer(run_id)
    slow = connect(feed_path(run_id))  # never reads
    messages, reader = follow(feed_path(run_id))
    while server.clients < 2:
        time.sleep(0.01)
    total, chunk = 3 * QUEUE_LINES, QUEUE_LINES // 2
    for start in range(0, total, chunk):  # far more than the slow viewer's queue and socket buffer hold
        for i in range(start, start + chunk):
            server.publish("sample", {"Test Time / s": float(i), "pad": "x" * 100})
        deadline = time.monotonic() + 60
        while len(messages) < start + chunk + 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # the reading viewer keeps up (this is not about its speed); the other never reads
    assert server.clients == 1  # the slow one was dropped; publishing went on
    server.close("finished")
    reader.join(30)
    assert [m["seq"] for m in messages if m["topic"] == "sample"] == list(range(total))
    assert messages[-1]["topic"] == "end"
    slow.settimeout(10)
    with slow.makefile("rb") as lines:
        got = [json.loads(line) for line in lines if line.endswith(b"\n")]  # until dropped, maybe mid-line
    assert 0 < len(got) < total and got[-1]["topic"] != "end"


def wait_for_rows(home, timeout_s=60.0):
    """The run id once the run has stored its first samples."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for folder in (home / "runs").glob("*") if (home / "runs").exists() else ():
            series = folder / TIMESERIES
            if series.exists() and series.read_text().count("\n") > 2:
                return folder.name
        time.sleep(0.02)
    raise AssertionError("the run stored no samples")


def test_a_viewer_joining_a_real_run_mid_way_sees_each_stored_record_once_and_a_stalled_one_does_not_hold_it(tmp_path):
    env = {**os.environ, "LABCTL_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "run", "ccd", "--bench", "sim", "-p", "sample_interval=5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        run_id = wait_for_rows(tmp_path)
        stalled = connect(feed_path(run_id))  # connects and never reads
        messages, reader = follow(feed_path(run_id))
        _out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    reader.join(10)
    stalled.close()
    assert not feed_path(run_id).exists()
    hello, live, end = messages[0]["record"]["sent"], messages[1:-1], messages[-1]
    assert end == {"topic": "end", "seq": 0, "record": {"status": "finished", "error": None}}
    folder = tmp_path / "runs" / run_id
    rows = pd.read_csv(folder / TIMESERIES)
    samples = [m for m in live if m["topic"] == "sample"]
    assert 0 < hello["sample"] < len(rows)  # it joined mid-run
    assert [m["seq"] for m in samples] == list(range(hello["sample"], len(rows)))  # no gap, no double
    live_rows = pd.DataFrame([m["record"] for m in samples])[rows.columns]
    np.testing.assert_allclose(live_rows.to_numpy(), rows.iloc[hello["sample"]:].to_numpy(), rtol=1e-9)
    lines = (folder / EVENTS).read_text().splitlines()
    events = [m for m in live if m["topic"] == "event"]
    assert [m["seq"] for m in events] == list(range(hello["event"], len(lines)))
    assert [m["record"] for m in events] == [json.loads(line) for line in lines[hello["event"]:]]
