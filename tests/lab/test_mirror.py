"""A desk's mirror of a remote run folder, and the relay of its feed, on real sockets (a real run on an agent PC)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from labctl.lab import link
from labctl.lab.link import LinkError
from labctl.lab.mirror import Mirror
from labctl.live.feed import FeedServer, feed_path
from labctl.store.folder import EVENTS, TIMESERIES
from labctl.store.reader import RunReader

from .test_link import RUN, TOKEN, agent_run, grow, serving, short_runtime_dir

runtime_dir, run, agent = pytest.fixture(short_runtime_dir), pytest.fixture(agent_run), pytest.fixture(serving)

AGENT_PC = r"""
import sys
from pathlib import Path

from labctl.bench import open_bench
from labctl.engine.runner import Listeners, Runner
from labctl.lab.link import LinkServer
from labctl.live.feed import RunFeed
from labctl.procedures import PROCEDURES
from labctl.store import Store

store = Store(Path(sys.argv[1]))
agent = LinkServer(lambda run_id: store.folder_of(run_id) if store.folder_of(run_id).is_dir() else None, sys.argv[2])
run_ids, rows = [], []


def sample(row):  # at the 100th row the run waits for the desk, which then sees it mid-way
    rows.append(row)
    if len(rows) == 100:
        print(agent.address, run_ids[0], flush=True)
        sys.stdin.readline()


procedure = PROCEDURES["ccd"](density_step=0.3, cycles_per_step=1)  # shorts within ~1000 rows
with open_bench("sim", sim_defaults=procedure.sim_defaults()) as bench:
    mine = Listeners(started=lambda run_id, folder: run_ids.append(run_id), sample=sample)
    Runner(store, Listeners.merged(RunFeed().listeners(), mine)).run(procedure, bench)
sys.stdin.readline()  # the agent serves the ended run until the desk is done
agent.close()
"""


def assert_same_run(copy: Path, original: Path) -> None:
    mine, theirs = RunReader(copy), RunReader(original)
    pd.testing.assert_frame_equal(mine.rows(), theirs.rows())
    assert mine.events() == theirs.events()
    assert mine.metadata() == theirs.metadata()
    assert mine.results() == theirs.results()
    assert [s.index for s in mine.spectra()] == [s.index for s in theirs.spectra()]
    assert not [p for p in copy.iterdir() if p.name.startswith(".")]  # no partial file left behind


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_copy_reads_back_as_the_run_as_it_grows(agent, run, tmp_path, monkeypatch):
    monkeypatch.setattr(link, "MAX_FETCH_BYTES", 256)  # every file in several pieces
    mirror = Mirror(tmp_path / "cache", TOKEN)
    assert mirror.sync(RUN, agent.address) == mirror.folder(RUN) == tmp_path / "cache" / RUN
    assert_same_run(mirror.folder(RUN), run.path)

    grow(run, 50, 30)
    with (run.path / TIMESERIES).open("a") as f:
        f.write("80,0.8")  # a row being written: not copied
    run.write_metadata({"run_id": RUN, "status": "finished", "ended_at": "now"})
    run.write_results({"ccd_mA_cm2": 0.6})
    mirror.sync(RUN, agent.address)
    assert_same_run(mirror.folder(RUN), run.path)
    remote = (run.path / TIMESERIES).read_bytes()
    assert (mirror.folder(RUN) / TIMESERIES).read_bytes() == remote[: remote.rfind(b"\n") + 1]

    with (run.path / TIMESERIES).open("a") as f:
        f.write(",0.001,8\n")
    mirror.sync(RUN, agent.address)
    assert len(RunReader(mirror.folder(RUN)).rows()) == 81
    assert_same_run(mirror.folder(RUN), run.path)


def test_a_rewritten_file_is_fetched_whole(agent, run, tmp_path):
    mirror = Mirror(tmp_path / "cache", TOKEN)
    mirror.sync(RUN, agent.address)
    run.write_metadata({"run_id": RUN, "status": "aborted"})  # the same size as "running"…
    os.utime(run.path / "metadata.json", ns=(1, 1))  # …and a time of its own
    events = run.path / EVENTS
    events.write_text(events.read_text().splitlines(keepends=True)[0])  # shorter than the copy
    mirror.sync(RUN, agent.address)
    assert RunReader(mirror.folder(RUN)).metadata()["status"] == "aborted"
    assert_same_run(mirror.folder(RUN), run.path)


def test_a_run_the_agent_does_not_serve_leaves_no_copy(agent, tmp_path):
    mirror = Mirror(tmp_path / "cache", TOKEN)
    with pytest.raises(LinkError, match="is not served by this agent"):
        mirror.sync("20260101-other", agent.address)
    assert not (tmp_path / "cache" / "20260101-other").exists()
    with pytest.raises(ValueError, match="not a run id"):
        mirror.folder("../runs")


def test_a_relay_never_replaces_a_local_feed(runtime_dir, tmp_path, free_port):
    local = FeedServer(RUN)
    local.publish("sample", {"Test Time / s": 0.0})
    mirror = Mirror(tmp_path / "cache", TOKEN)
    try:
        assert mirror.relay(RUN, f"127.0.0.1:{free_port}") is False
        with socket.socket(socket.AF_UNIX) as viewer:
            viewer.connect(str(feed_path(RUN)))
            hello = json.loads(viewer.makefile("rb").readline())
        assert hello["record"]["sent"]["sample"] == 1  # the local run's own feed
    finally:
        mirror.close()
        local.close("finished")


def test_a_dead_socket_is_relayed_over_and_closing_removes_the_relay(runtime_dir, tmp_path, free_port):
    path = feed_path(RUN)
    path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX) as dead:  # a process that died without removing its socket
        dead.bind(str(path))
    mirror = Mirror(tmp_path / "cache", TOKEN)
    assert mirror.relay(RUN, f"127.0.0.1:{free_port}") is True
    assert mirror.relay(RUN, f"127.0.0.1:{free_port}") is True  # already relayed
    with socket.socket(socket.AF_UNIX) as viewer:
        viewer.connect(str(path))  # the relay listens
    mirror.close()
    assert not path.exists()


def test_a_desk_follows_a_run_on_another_pc_through_the_relay(runtime_dir, tmp_path):
    agent_runtime = tempfile.mkdtemp(prefix="lk-agent-")
    env = {**os.environ, "XDG_RUNTIME_DIR": agent_runtime, "LABCTL_HOME": str(tmp_path / "agent")}
    pc = subprocess.Popen([sys.executable, "-c", AGENT_PC, str(tmp_path / "agent"), TOKEN], env=env, text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    mirror = Mirror(tmp_path / "desk-cache", TOKEN)
    try:
        address, run_id = pc.stdout.readline().split()
        assert not feed_path(run_id).exists()  # on the desk the run has no socket of its own
        assert mirror.relay(run_id, address)
        with socket.socket(socket.AF_UNIX) as viewer:
            viewer.settimeout(30)
            viewer.connect(str(feed_path(run_id)))
            stream = viewer.makefile("rb")
            hello = json.loads(stream.readline())
            sent = hello["record"]["sent"]
            copy = RunReader(mirror.folder(run_id))
            assert sent["sample"] >= 100 and len(copy.rows()) >= sent["sample"] and len(copy.events()) >= sent["event"]
            pc.stdin.write("go\n")
            pc.stdin.flush()
            messages = [json.loads(line) for line in stream]
        wait_until(lambda: not feed_path(run_id).exists())  # the run ended: so did its relay

        assert messages[-1]["topic"] == "end" and messages[-1]["record"]["status"] == "finished"
        original = tmp_path / "agent" / "runs" / run_id
        samples = [m["seq"] for m in messages if m["topic"] == "sample"]
        assert samples == list(range(sent["sample"], len(RunReader(original).rows())))

        assert mirror.relay(run_id, address)  # the run has ended: a viewer finds the copy complete, and no feed
        with socket.socket(socket.AF_UNIX) as viewer:
            viewer.settimeout(30)
            viewer.connect(str(feed_path(run_id)))
            assert viewer.makefile("rb").read() == b""
        assert_same_run(mirror.folder(run_id), original)
        pc.stdin.write("done\n")
        pc.stdin.flush()
        assert pc.wait(30) == 0
    finally:
        mirror.close()
        pc.kill()
        shutil.rmtree(agent_runtime, ignore_errors=True)
