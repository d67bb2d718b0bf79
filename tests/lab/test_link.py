"""The lab link on real sockets: files from an offset, listings, feeds; names, tokens and bad requests refused."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.lab import link
from labctl.lab.link import LinkError, LinkServer, fetch, listing, open_feed
from labctl.live.feed import FeedServer
from labctl.store.folder import EVENTS, TIMESERIES, RunFolder

RUN = "20260101-120000-ccd-ab12"
TOKEN = "a-lab-token-0123456789"
COLUMNS = ["Test Time / s", "Voltage / V", "Current / A", "Cycle Count / 1"]


def grow(run: RunFolder, start: int, count: int) -> None:
    """``count`` more rows and an event, as a run writes them."""
    for i in range(start, start + count):
        run.append({"Test Time / s": float(i), "Voltage / V": 0.01 * i, "Current / A": 1e-3, "Cycle Count / 1": i // 10})
    run.event("segment_started", first_row=start)


def short_runtime_dir(monkeypatch) -> Iterator[Path]:
    """A private, short directory for feed sockets (AF_UNIX paths are short)."""
    path = Path(tempfile.mkdtemp(prefix="lk-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def agent_run(tmp_path) -> Iterator[RunFolder]:
    """A run being written on the agent: rows, an event, a spectrum, its metadata."""
    folder = RunFolder(tmp_path / "agent" / "runs" / RUN, COLUMNS)
    folder.write_metadata({"run_id": RUN, "status": "running"})
    grow(folder, 0, 50)
    folder.add_spectrum(0, 12.0, 0, 1, [(1e5, 10 - 1j), (1e3, 20 - 5j)])
    yield folder
    folder.close()


def serving(run: RunFolder) -> Iterator[LinkServer]:
    """An agent serving that run alone."""
    server = LinkServer(lambda run_id: run.path if run_id == RUN else None, TOKEN)
    yield server
    server.close()


runtime_dir, run, agent = pytest.fixture(short_runtime_dir), pytest.fixture(agent_run), pytest.fixture(serving)


def ask_raw(address: str, payload: bytes) -> dict:
    """Send raw bytes as a request; the agent's header."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        return json.loads(sock.makefile("rb").readline())


def test_a_file_is_served_whole_or_from_an_offset(agent, run):
    data = (run.path / EVENTS).read_bytes()
    assert fetch(agent.address, TOKEN, RUN, EVENTS) == data
    assert fetch(agent.address, TOKEN, RUN, EVENTS, offset=10) == data[10:]
    assert fetch(agent.address, TOKEN, RUN, EVENTS, offset=len(data) + 5) == b""


def test_a_large_file_comes_in_pieces(agent, run, monkeypatch):
    monkeypatch.setattr(link, "MAX_FETCH_BYTES", 100)
    data = (run.path / TIMESERIES).read_bytes()
    assert fetch(agent.address, TOKEN, RUN, TIMESERIES, offset=7) == data[7:107]


def test_the_listing_holds_the_plain_files_only(agent, run, tmp_path):
    (run.path / ".hidden").write_text("x")
    (run.path / "metadata.json.tmp").write_text("{")  # a writer's file about to be renamed
    (run.path / "sub").mkdir()
    (run.path / "link").symlink_to(run.path / EVENTS)
    expected = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in run.path.iterdir()
                if p.name in {TIMESERIES, EVENTS, "metadata.json", "spectra.csv"}}  # fmt: skip
    assert listing(agent.address, TOKEN, RUN) == expected


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", ".hidden", "..", "", "sub", "sub/inner", "link", "fifo", 7])
def test_names_that_leave_the_folder_or_are_not_plain_files_are_refused(agent, run, tmp_path, name):
    (tmp_path / "x").write_text("outside")
    (run.path / ".hidden").write_text("hidden")
    (run.path / "sub").mkdir()
    (run.path / "sub" / "inner").write_text("inner")
    (run.path / "link").symlink_to(tmp_path / "x")
    os.mkfifo(run.path / "fifo")
    with pytest.raises(LinkError, match=r"refused: .* the run's folder"):
        fetch(agent.address, TOKEN, RUN, name)  # type: ignore[arg-type]


@pytest.mark.parametrize("run_id", ["../runs", "..", "x/y", "", "20260101-other"])
def test_a_run_the_agent_does_not_serve_is_refused(agent, run_id):
    with pytest.raises(LinkError, match="is not served by this agent"):
        listing(agent.address, TOKEN, run_id)


@pytest.mark.parametrize("offset", [-1, "3", True, 1.5])
def test_a_bad_offset_is_refused(agent, offset):
    with pytest.raises(LinkError, match="offset"):
        fetch(agent.address, TOKEN, RUN, EVENTS, offset)  # type: ignore[arg-type]


def test_a_wrong_or_missing_token_is_refused(agent):
    with pytest.raises(LinkError, match=f"agent at {agent.address} refused: the lab token differs from the agent's"):
        fetch(agent.address, "not-the-lab-token", RUN, EVENTS)
    request = json.dumps({"op": "list", "run": RUN}).encode() + b"\n"
    assert ask_raw(agent.address, request) == {"ok": False, "error": link.WRONG_TOKEN}


def test_beyond_this_pc_the_agent_needs_a_long_token(run):
    for token in ("", "short"):
        with pytest.raises(ValueError, match=r"\[link\] token in lab.toml \(or LABCTL_TOKEN\)"):
            LinkServer(lambda run_id: run.path, token, host="0.0.0.0")
    local = LinkServer(lambda run_id: run.path, "", host="127.0.0.1")  # on this PC alone, no token is needed
    try:
        assert EVENTS in listing(local.address, "", RUN)
    finally:
        local.close()


@pytest.mark.parametrize(("payload", "words"), [
    (b"\xff\xfe{}\n", "not one JSON object in UTF-8"),
    (b"not json\n", "not one JSON object in UTF-8"),
    (b"[1, 2]\n", "not one JSON object in UTF-8"),
    (b"[" * 3000 + b"\n", "not one JSON object in UTF-8"),
    (b"x" * (link.MAX_REQUEST_BYTES + 1), "longer than 4096 bytes"),
    (json.dumps({"token": TOKEN, "op": "delete", "run": RUN}).encode() + b"\n", "unknown op 'delete'"),
])  # fmt: skip
def test_bad_requests_are_refused_and_the_agent_goes_on(agent, run, payload, words):
    header = ask_raw(agent.address, payload)
    assert header["ok"] is False and words in header["error"]
    assert fetch(agent.address, TOKEN, RUN, EVENTS) == (run.path / EVENTS).read_bytes()


def test_a_request_that_does_not_come_is_refused(agent, run, monkeypatch):
    monkeypatch.setattr(link, "REQUEST_TIMEOUT_S", 0.2)
    header = ask_raw(agent.address, b'{"token": ')  # and nothing more
    assert header["ok"] is False and "no whole request line within 0.2 s" in header["error"]
    assert fetch(agent.address, TOKEN, RUN, EVENTS) == (run.path / EVENTS).read_bytes()


def test_the_feed_is_spliced_from_the_runs_socket(agent, runtime_dir):
    feed = FeedServer(RUN)
    for i in range(3):
        feed.publish("sample", {"Test Time / s": float(i)})
    sock = open_feed(agent.address, TOKEN, RUN)
    with sock, sock.makefile("rb") as lines:
        hello = json.loads(lines.readline())  # before publishing more: what the hello counts is not sent again
        feed.publish("sample", {"Test Time / s": 3.0})
        feed.close("finished")
        messages = [json.loads(line) for line in lines]
    assert hello["record"] == {"run_id": RUN, "sent": {"sample": 3, "event": 0, "spectrum": 0}}
    assert [(m["topic"], m["seq"]) for m in messages] == [("sample", 3), ("end", 0)]


def test_a_run_without_a_feed_is_refused(agent, runtime_dir):
    with pytest.raises(LinkError, match="has no live feed on this agent"):
        open_feed(agent.address, TOKEN, RUN)


def test_closing_the_agent_cuts_the_feeds_it_serves(agent, runtime_dir):
    feed = FeedServer(RUN)
    try:
        sock = open_feed(agent.address, TOKEN, RUN)
        with sock, sock.makefile("rb") as lines:
            assert json.loads(lines.readline())["topic"] == "hello"
            sock.settimeout(5)
            agent.close()
            assert lines.read() == b""
    finally:
        feed.close("finished")


def test_an_agent_that_is_not_there_is_named(free_port, monkeypatch):
    with pytest.raises(LinkError, match=f"agent at 127.0.0.1:{free_port} refused the connection"):
        listing(f"127.0.0.1:{free_port}", TOKEN, RUN)
    monkeypatch.setattr(link, "TIMEOUT_S", 0.2)
    with socket.socket() as silent:  # accepts (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(LinkError, match=f"agent at {address} did not answer within 0.2 s"):
            listing(address, TOKEN, RUN)
    with pytest.raises(LinkError, match="not a lab agent's address"):
        listing("db-pc", TOKEN, RUN)
