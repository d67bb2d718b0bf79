"""The store's database on both backends: instrument claims taken once, leases and unreachable entries and runs,
agents, schema versions and `labctl db upgrade`, and `labctl db import` of a one-PC store into a lab's."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.queue import Entry
from labctl.queue.agents import Agents
from labctl.queue.db import QueueError, utc_now
from labctl.store import Store, StoreError
from labctl.store.schema import VERSION

pytestmark = pytest.mark.usefixtures("store_db")
LEASE_S = 0.3


def wait_until(check, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def add(store: Store, *claims: str, bench: str = "sim") -> int:
    (entry_id,) = store.queue.add([Entry(procedure="ccd", bench=bench, claims=list(claims))])
    return entry_id


def test_an_entry_is_claimed_by_one_agent_and_a_held_instrument_by_one_entry(tmp_path):
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")  # two connections, as two PCs on one lab database
    if a.database.dialect == "sqlite":
        b = Store(tmp_path / "a")  # one PC: two processes on one file
    first = add(a, "cycler@bay#1", "impedance@GPIB0::4::INSTR")
    second = add(a, "cycler@bay#2", "impedance@GPIB0::4::INSTR")  # the same analyzer
    third = add(a, "cycler@bay#3")
    assert a.queue.claim_start(first, utc_now(), "pc-a")
    assert not b.queue.claim_start(first, utc_now(), "pc-b")  # already running
    assert not b.queue.claim_start(second, utc_now(), "pc-b")  # its analyzer is held
    assert b.queue.claim_start(third, utc_now(), "pc-b")
    assert b.queue.get(second).state == "queued"  # the refused claim left nothing behind
    assert a.queue.held_claims() == {"cycler@bay#1": first, "impedance@GPIB0::4::INSTR": first, "cycler@bay#3": third}
    a.queue.end(first, "finished", {}, utc_now())
    assert b.queue.claim_start(second, utc_now(), "pc-b")
    assert {e.id: e.agent for e in a.queue.entries()} == {first: "pc-a", second: "pc-b", third: "pc-b"}


def test_an_entry_whose_agent_stops_renewing_is_unreachable_until_it_renews(tmp_path):
    store = Store(tmp_path)
    entry_id = add(store, "cycler@bay#1")
    assert store.queue.claim_start(entry_id, utc_now(), "pc-a", lease_s=LEASE_S)
    assert store.queue.get(entry_id).state == "running"
    wait_until(lambda: store.queue.get(entry_id).state == "unreachable")
    entry = store.queue.get(entry_id)
    assert entry.active and "cycler@bay#1" in store.queue.held_claims()  # its instruments stay held
    store.queue.renew("pc-a", 60)
    assert store.queue.get(entry_id).state == "running"
    store.queue.end(entry_id, "finished", {}, utc_now())
    wait_until(lambda: True, 0)
    assert store.queue.get(entry_id).state == "finished"  # an ended entry is never unreachable


def test_a_run_of_another_pc_is_unreachable_once_its_lease_lapses(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LEASE_S", str(LEASE_S))
    monkeypatch.setenv("LABCTL_HOST", "pc-a")
    store = Store(tmp_path)
    store.registry.add("r1", procedure="ccd", bench="sim", cell_id="c", folder=tmp_path / "runs" / "r1")
    monkeypatch.setenv("LABCTL_HOST", "desk")
    assert store.registry.get("r1").status == "running"
    wait_until(lambda: store.registry.get("r1").status == "unreachable")
    monkeypatch.setenv("LABCTL_HOST", "pc-a")
    assert store.registry.get("r1").status == "running"  # its own PC sees its process alive
    store.registry.renew("r1")
    store.registry.finish("r1", "finished")
    monkeypatch.setenv("LABCTL_HOST", "desk")
    assert store.registry.get("r1").status == "finished"


def test_a_run_keeps_its_lease_while_its_process_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_LEASE_S", str(LEASE_S))
    store = Store(tmp_path)
    store.registry.add("r1", procedure="ccd", bench="sim", cell_id="c", folder=tmp_path / "runs" / "r1")
    done = store.registry.keep_leased("r1")
    monkeypatch.setenv("LABCTL_HOST", "desk")
    time.sleep(3 * LEASE_S)
    assert store.registry.get("r1").status == "running"
    done.set()
    wait_until(lambda: store.registry.get("r1").status == "unreachable")


def test_an_agent_name_is_held_by_one_live_process(tmp_path, monkeypatch):
    store = Store(tmp_path)
    agents = Agents(store.database)
    agents.register("pc-a", {"sim": None}, 60)
    with pytest.raises(QueueError, match="agent 'pc-a' already serves"):
        agents.register("pc-a", None, 60)  # this process is alive: a second one is refused
    store.database.execute("UPDATE agents SET pid = ?", (2**22 + 12345,))  # it died (kill -9) on this PC
    agents.register("pc-a", None, 60)
    assert agents.get("pc-a").benches is None and agents.get("pc-a").reachable
    monkeypatch.setenv("LABCTL_HOST", "pc-b")  # another PC's agent of the same name, still leased
    with pytest.raises(QueueError, match="another --agent name"):
        agents.register("pc-a", None, 60)
    store.database.execute("UPDATE agents SET lease_until = 0")  # its lease lapsed
    assert not agents.get("pc-a").reachable
    agents.register("pc-a", {"sim": None}, 60)
    agents.leave("pc-a")
    assert agents.list() == []


def test_a_new_database_is_at_this_version_and_db_upgrade_says_so(tmp_path):
    store = Store(tmp_path)
    row = store.database.execute("SELECT version FROM schema_version").fetchone()
    assert row["version"] == VERSION
    result = CliRunner().invoke(app, ["db", "upgrade", "--store", str(tmp_path)])
    assert result.exit_code == 0 and f"schema version {VERSION}, already current" in result.output


def as_version_1(db) -> None:
    """Undo version 2's changes, as a database made by the labctl before it."""
    for statement in ("DROP INDEX queue_state", "DROP INDEX runs_status", "DROP TABLE claims", "DROP TABLE agents",
                      "ALTER TABLE runs DROP COLUMN agent", "ALTER TABLE runs DROP COLUMN lease_until",
                      "ALTER TABLE queue DROP COLUMN agent", "ALTER TABLE queue DROP COLUMN lease_until",
                      "UPDATE schema_version SET version = 1"):  # fmt: skip
        db.execute(statement)


def test_an_older_lab_database_waits_for_db_upgrade_and_a_newer_one_is_refused(tmp_path):
    store = Store(tmp_path)
    as_version_1(store.database)
    store.close()
    if store.config.shared:  # a lab's database moves forward only by `labctl db upgrade`
        with pytest.raises(StoreError, match="labctl db upgrade"):
            _ = Store(tmp_path).database
        listing = CliRunner().invoke(app, ["runs", "list", "--store", str(tmp_path)])
        words = " ".join(listing.output.replace("│", " ").split())  # the error box folds lines
        assert listing.exit_code == 2 and "labctl db upgrade" in words and "Traceback" not in words
        result = CliRunner().invoke(app, ["db", "upgrade", "--store", str(tmp_path)])
        assert result.exit_code == 0 and f"schema version {VERSION} (was 1)" in result.output
    again = Store(tmp_path)  # SQLite: brought up to date on opening, as one PC's store always was
    assert again.queue.entries() == [] and again.database.execute("SELECT agent FROM queue").fetchall() == []
    again.database.execute("UPDATE schema_version SET version = 99")
    again.close()
    with pytest.raises(StoreError, match="newer than this labctl"):
        _ = Store(tmp_path).database


def test_a_desk_queues_on_a_bench_another_pc_hosts_by_its_name(tmp_path, store_db):
    bench = tmp_path / "pc-a" / "bay.toml"  # on the Arbin PC only
    bench.parent.mkdir()
    bench.write_text('[roles.cycler]\ndriver = "arbin-cti"\nresource = "192.168.1.20:9031"\nchannel = 3\n')
    desk = Store(tmp_path / "desk")
    Agents(desk.database).register("pc-a", {str(bench): bench.read_text()}, 60)
    bench.rename(tmp_path / "elsewhere.toml")  # the desk cannot read it: the agent's registered text is used
    runner = CliRunner()
    result = runner.invoke(app, ["queue", "add", "ccd", "--bench", "bay", "--channel", "5", "--store", str(desk.root)])
    assert result.exit_code == 0, result.output
    (entry,) = desk.queue.entries()
    assert entry.bench == str(bench) and entry.claims == ["cycler@192.168.1.20:9031#5"]
    refused = runner.invoke(app, ["queue", "add", "eis", "--bench", "bay", "--store", str(desk.root)])
    assert refused.exit_code == 2 and "no impedance role" in refused.output


def test_an_agent_reads_only_live_entries_and_those_a_waiting_one_follows(tmp_path):
    store = Store(tmp_path)
    old, followed, running, waiting, held = (add(store, f"cycler@bay#{n}") for n in range(1, 6))
    for ended in (old, followed):
        assert store.queue.claim_start(ended, utc_now())
        store.queue.end(ended, "finished", {}, utc_now())
    assert store.queue.claim_start(running, utc_now())
    store.database.execute("UPDATE queue SET after = ? WHERE id = ?", (followed, waiting))
    store.queue.set_waiting_state(held, "held")
    assert [e.id for e in store.queue.live_entries()] == [followed, running, waiting, held]
    assert len(store.queue.entries()) == 5
