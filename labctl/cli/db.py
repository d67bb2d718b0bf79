"""``labctl db …``: the store's database — its schema version, moving it forward, bringing a one-PC store into a lab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labctl.cli.console import fail, out

db_app = typer.Typer(no_args_is_help=True, help="The store's database (SQLite, or the lab's PostgreSQL).")
PlainStoreOption = Annotated[Path | None, typer.Option("--store", help="Store folder (default $LABCTL_HOME or "
                                                       "~/labctl-data); its lab.toml or LABCTL_DB names the database")]


@db_app.command("upgrade")
def db_upgrade(store: PlainStoreOption = None) -> None:
    """Move the database's schema forward to this labctl's version (once per lab, after upgrading labctl)."""
    from labctl.store import StoreError, default_root, lab_config, registry_path
    from labctl.store.db import open_database
    from labctl.store.schema import upgrade

    root = store or default_root()
    try:
        db = open_database(lab_config(root).database.url or registry_path(root))
        try:
            before, after = upgrade(db)
        finally:
            db.close()
    except StoreError as e:
        raise fail(str(e)) from None
    out.print(f"{db.url}: schema version {after}" + (f" (was {before})" if before != after else ", already current"),
              highlight=False)


@db_app.command("import")
def db_import(
    source: Annotated[Path, typer.Argument(help="A one-PC store folder (with its registry.sqlite) to bring in")],
    store: PlainStoreOption = None,
) -> None:
    """Copy a one-PC store's runs and queue into this store's database (the lab's): runs already there are left as
    they are, entries already there are not added twice. Refused while the source has anything running."""
    from labctl.store import Store, StoreError, registry_path
    from labctl.store.db import open_database

    path = registry_path(source)
    if not path.is_file():
        raise fail(f"SOURCE: {source} holds no registry.sqlite; give the folder of a one-PC store")
    try:
        target = Store(store)
        if target.database.dialect == "sqlite" and Path(target.database.url).resolve() == path.resolve():
            raise fail("SOURCE: is this store itself; give another store's folder")
        src = open_database(path)
        try:
            runs, entries = _copy(src, target.database)
        finally:
            src.close()
    except StoreError as e:
        raise fail(str(e)) from None
    out.print(f"imported {runs} run(s) and {entries} queue entr{'y' if entries == 1 else 'ies'} from {source} into "
              f"{target.database.url}", highlight=False)


RUN_COLUMNS = ("id", "procedure", "status", "started_at", "ended_at", "bench", "cell_id", "folder", "host", "pid",
               "summary")  # fmt: skip
ENTRY_COLUMNS = ("position", "procedure", "bench", "params", "cell", "seed", "channel", "claims", "state",
                 "not_before", "after", "rest_s", "run_id", "pid", "added_at", "started_at", "ended_at", "outcome",
                 "stop_requested", "limits")  # fmt: skip


SAME = ("added_at", "procedure", "bench", "params", "claims")  # an entry already imported has these the same


def _same(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in SAME)


def _copy(src: Any, dst: Any) -> tuple[int, int]:
    """Copy runs and entries in one transaction of the target; the counts copied."""
    from labctl.store.schema import prepare

    prepare(src)  # an older one-PC store is brought up to date first, as opening it would
    running = src.execute("SELECT COUNT(*) AS n FROM runs WHERE status = 'running'").fetchone()["n"]
    active = src.execute("SELECT COUNT(*) AS n FROM queue WHERE state = 'running'").fetchone()["n"]
    if running or active:
        raise fail(f"SOURCE: {running} run(s) and {active} queue entr{'y' if active == 1 else 'ies'} still run there; "
                   "stop its labctl serve and let its runs end (or stop them) first")
    runs = entries = 0
    ids: dict[int, int] = {}  # the source's entry ids → the target's, for the entries that wait for another
    with dst.transaction():
        for row in src.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs").fetchall():
            if not dst.execute("SELECT 1 AS x FROM runs WHERE id = ?", (row["id"],)).fetchone():
                dst.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                            tuple(row[c] for c in RUN_COLUMNS))  # fmt: skip
                runs += 1
        top = dst.execute("SELECT COALESCE(MAX(position), 0) AS top FROM queue").fetchone()["top"]
        present = {_same(row): row["id"] for row in dst.execute(f"SELECT id, {', '.join(SAME)} FROM queue")}
        for row in src.execute(f"SELECT id, {', '.join(ENTRY_COLUMNS)} FROM queue ORDER BY id").fetchall():
            if _same(row) in present:  # imported before
                ids[row["id"]] = present[_same(row)]
                continue
            values = dict(row, position=top + row["position"], after=ids.get(row["after"], row["after"]))
            new = dst.execute(f"INSERT INTO queue ({', '.join(ENTRY_COLUMNS)}) VALUES "
                              f"({', '.join('?' * len(ENTRY_COLUMNS))}) RETURNING id",
                              tuple(values[c] for c in ENTRY_COLUMNS)).fetchone()  # fmt: skip
            ids[row["id"]] = new["id"]
            entries += 1
        dst.notify()
    return runs, entries
