"""The run store: a folder per run under ``<root>/runs``, and the database of the registry and the queue: the
store's own ``<root>/registry.sqlite``, or the lab's PostgreSQL database that the lab config names (``LABCTL_DB``
or ``<root>/lab.toml``, ``labctl.lab.config``).

:class:`RunFolder` writes a run's folder, :class:`RunReader` reads it (the one reader: views, queue, exports, CLI).

The root is ``$LABCTL_HOME`` when set, else ``~/labctl-data``.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.lab.config import LabConfig, LabConfigError, load_lab_config
from labctl.store.db import Database, open_database
from labctl.store.folder import RunFolder, store_modes
from labctl.store.reader import RunReader
from labctl.store.registry import Registry, RunRecord
from labctl.store.schema import prepare
from labctl.store.sqlite import StoreError, check_database

if TYPE_CHECKING:
    from labctl.queue.db import QueueDB

__all__ = ["Registry", "RunFolder", "RunReader", "RunRecord", "Store", "StoreError", "check_store",
           "default_root", "registry_path", "store_of"]

REGISTRY = "registry.sqlite"
RUNS = "runs"


def registry_path(root: Path) -> Path:
    """The store's SQLite database: its runs and its queue."""
    return root / REGISTRY


def store_of(folder: Path) -> Path:
    """The root of the store a run folder belongs to."""
    return folder.parent.parent


def default_root() -> Path:
    return Path(os.environ.get("LABCTL_HOME") or Path.home() / "labctl-data")


def check_store(root: Path) -> None:
    """Raise StoreError if ``root`` cannot be a store (a file, a bad lab config, or a corrupt registry); creates
    nothing."""
    runs = root / RUNS
    nearest = runs if runs.exists() else next(p for p in (root, *root.parents) if p.exists())
    if not nearest.is_dir():
        raise StoreError(f"{nearest}: is a file, not a store folder; give a folder (a new one is created)")
    config = lab_config(root)
    if config.shared:
        open_prepared(config.database.url).close()  # reachable, and at this labctl's schema version
    else:
        check_database(registry_path(root))
    try:
        store_modes()
    except ValueError as e:
        raise StoreError(str(e)) from None


def lab_config(root: Path) -> LabConfig:
    """The store's lab config; StoreError naming the field and the fix."""
    try:
        return load_lab_config(root)
    except LabConfigError as e:
        raise StoreError(str(e)) from None


def open_prepared(url: str | Path) -> Database:
    """Open a store's database and make it ready for this labctl (``schema.prepare``); StoreError if it cannot."""
    db = open_database(url)
    try:
        prepare(db)
    except BaseException:
        db.close()
        raise
    return db


class Store:
    def __init__(self, root: Path | None = None, desk: bool = False) -> None:
        """``desk``: in a lab, show other PCs' runs with their folders copied here (``labctl.lab.desk``)."""
        self.root = root or default_root()
        self.desk = desk

    @cached_property
    def config(self) -> LabConfig:
        return lab_config(self.root)

    @cached_property
    def database(self) -> Database:
        """The registry's and the queue's database, opened (created, for a new store) when first used: a command
        refused before it registers a run leaves nothing behind."""
        return open_prepared(self.config.database.url or registry_path(self.root))

    @cached_property
    def registry(self) -> Registry:
        if self.desk and self.config.shared:
            from labctl.lab.desk import DeskRegistry  # here: a run's own process never needs it

            return DeskRegistry(self.database, self.config.lab.lease_s, self.root, self.config.link.token or "")
        return Registry(self.database, self.config.lab.lease_s)

    @cached_property
    def queue(self) -> QueueDB:
        from labctl.queue.db import QueueDB  # here: the queue package imports the store

        return QueueDB(self.database)

    def has_registry(self) -> bool:
        """Whether the store has a registry yet (a lab database always has one); asking creates nothing."""
        return self.config.shared or registry_path(self.root).exists()

    def new_run_id(self, procedure: str) -> str:
        return f"{datetime.now():%Y%m%d-%H%M%S}-{procedure}-{secrets.token_hex(2)}"

    def folder_of(self, run_id: str) -> Path:
        return self.root / RUNS / run_id

    def close(self) -> None:
        if "registry" in self.__dict__:
            self.registry.close()
        if "database" in self.__dict__:
            self.database.close()
