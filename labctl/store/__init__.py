"""The run store: a folder per run under ``<root>/runs`` and the registry ``<root>/registry.sqlite``.

:class:`RunFolder` writes a run's folder, :class:`RunReader` reads it (the one reader: views, queue, exports, CLI).

The root is ``$LABCTL_HOME`` when set, else ``~/labctl-data``.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from functools import cached_property
from pathlib import Path

from labctl.store.folder import RunFolder, store_modes
from labctl.store.reader import RunReader
from labctl.store.registry import Registry, RunRecord
from labctl.store.sqlite import StoreError, check_database

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
    """Raise StoreError if ``root`` cannot be a store (a file, or a corrupt registry); creates nothing."""
    runs = root / RUNS
    nearest = runs if runs.exists() else next(p for p in (root, *root.parents) if p.exists())
    if not nearest.is_dir():
        raise StoreError(f"{nearest}: is a file, not a store folder; give a folder (a new one is created)")
    check_database(registry_path(root))
    try:
        store_modes()
    except ValueError as e:
        raise StoreError(str(e)) from None


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    @cached_property
    def registry(self) -> Registry:
        """The store's registry, opened (created, for a new store) when first used: a command refused before it
        registers a run leaves nothing behind."""
        return Registry(registry_path(self.root))

    def new_run_id(self, procedure: str) -> str:
        return f"{datetime.now():%Y%m%d-%H%M%S}-{procedure}-{secrets.token_hex(2)}"

    def folder_of(self, run_id: str) -> Path:
        return self.root / RUNS / run_id

    def close(self) -> None:
        if "registry" in self.__dict__:
            self.registry.close()
