"""`labctl db import`: a one-PC store's runs and queue brought into a lab's PostgreSQL database, once."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from labctl.cli import app
from labctl.queue import Entry
from labctl.store import Store


def test_db_import_brings_a_one_pc_store_in_once(tmp_path, monkeypatch, pg_url):
    lab_url = pg_url
    old = Store(tmp_path / "old")  # a one-PC store: its own SQLite file
    old.registry.add("r1", procedure="ccd", bench="sim", cell_id="c1", folder=tmp_path / "old" / "runs" / "r1")
    old.registry.finish("r1", "finished", {"brief": "CCD 0.6"})
    first, second = old.queue.add([Entry(procedure="ccd", bench="sim", claims=["cycler@sim#1"]),
                                   Entry(procedure="ccd", bench="sim", claims=["cycler@sim#2"], state="held")])
    old.queue.database.execute("UPDATE queue SET after = ? WHERE id = ?", (first, second))
    monkeypatch.setenv("LABCTL_DB", lab_url)
    lab = Store(tmp_path / "lab")
    lab.queue.add([Entry(procedure="eis", bench="sim", claims=["impedance@sim"])])  # the lab's own entry 1
    command = ["db", "import", str(tmp_path / "old"), "--store", str(tmp_path / "lab")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0 and "imported 1 run(s) and 2 queue entries" in result.output, result.output
    (record,) = lab.registry.list()
    assert (record.id, record.status, record.summary) == ("r1", "finished", {"brief": "CCD 0.6"})
    entries = lab.queue.entries()
    assert [e.procedure for e in entries] == ["eis", "ccd", "ccd"]
    assert entries[2].schedule.after == entries[1].id and entries[2].state == "held"  # ids mapped
    again = CliRunner().invoke(app, command)
    assert again.exit_code == 0 and "imported 0 run(s) and 0 queue entries" in again.output
    monkeypatch.delenv("LABCTL_DB")
    old.registry.add("r2", procedure="ccd", bench="sim", cell_id="c2", folder=tmp_path / "old" / "runs" / "r2")
    monkeypatch.setenv("LABCTL_DB", lab_url)
    refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 2 and "still run there" in refused.output
    assert json.loads(CliRunner().invoke(app, ["runs", "list", "--json", "--store", str(tmp_path / "lab")]).stdout)[0][
        "id"] == "r1"
