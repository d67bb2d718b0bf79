"""The run store: a folder per run under ``<root>/runs`` and the registry ``<root>/registry.sqlite``.

The root is ``$LABCTL_HOME`` when set, else ``~/labctl-data``.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path

from labctl.store.folder import RunFolder
from labctl.store.registry import Registry, RunRecord

__all__ = ["Registry", "RunFolder", "RunRecord", "Store", "default_root"]


def default_root() -> Path:
    return Path(os.environ.get("LABCTL_HOME") or Path.home() / "labctl-data")


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()
        self.registry = Registry(self.root / "registry.sqlite")

    def new_run_id(self, procedure: str) -> str:
        return f"{datetime.now():%Y%m%d-%H%M%S}-{procedure}-{secrets.token_hex(2)}"

    def folder_of(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def close(self) -> None:
        self.registry.close()
