"""Copy a finished run's folder to the lab's shared archive (``[lab] archive`` of the lab config).

The copy is made beside its final name and renamed into place, so the archive never shows half a run; a run
archived again (resumed after an interruption, then ended) replaces its earlier copy.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

ARCHIVED = ("finished", "failed", "aborted")  # ends that are final: an interrupted run may still be resumed


def archive(folder: Path, archive_root: Path) -> Path | None:
    """Copy ``folder`` to ``archive_root/<its name>``; the copy, or None (logged) if it could not be made."""
    target = archive_root / folder.name
    partial = archive_root / f".{folder.name}.partial"
    try:
        archive_root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(folder, partial)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    except OSError as e:
        log.warning("run %s: not copied to the archive %s (%s); its folder stays in the store", folder.name,
                    archive_root, e)  # fmt: skip
        shutil.rmtree(partial, ignore_errors=True)
        return None
    return target
