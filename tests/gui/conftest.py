from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from typer.testing import CliRunner

from labctl.cli import app
from labctl.queue.db import QueueDB
from labctl.store import Store


@pytest.fixture
def store_root(tmp_path):
    """An empty store with its registry and queue tables."""
    root = tmp_path / "store"
    Store(root).close()
    return root


@pytest.fixture
def queue(store_root):
    db = QueueDB(store_root / "registry.sqlite")
    yield db
    db.close()


@pytest.fixture
def registry(store_root):
    store = Store(store_root)
    yield store.registry
    store.close()


# Short simulated runs, one of each kind the run view draws: a CCD that shorts, in-situ EIS, CE cycling, one spectrum
SIM_RUNS = {
    "ccd": ["ccd", "-p", "density_step=0.25", "-p", "sample_interval=30"],
    "insitu-eis": ["insitu-eis", "-p", "cycles=1", "-p", "half_cycle_capacity=0.25", "-p", "points_per_decade=5"],
    "ce-cycling": ["ce-cycling", "--cell", "Mg-Cu", "-p", "cycles=3"],
    "eis": ["eis", "-p", "points_per_decade=5"],
}


@pytest.fixture(scope="session")
def sim_store(tmp_path_factory) -> Path:
    """A store holding the finished SIM_RUNS, made once per session through the `labctl run` command (in this
    process: the imports, not the runs, are most of a `labctl run` process's time)."""
    root = tmp_path_factory.mktemp("sim-store")
    for args in SIM_RUNS.values():
        result = CliRunner().invoke(app, ["run", *args, "--bench", "sim", "--store", str(root)])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="session")
def sim_runs(sim_store) -> dict[str, Path]:
    """Procedure name → run folder of the runs in ``sim_store``."""
    store = Store(sim_store)
    try:
        return {r.procedure: Path(r.folder) for r in store.registry.list()}
    finally:
        store.close()


@pytest.fixture(autouse=True)
def own_settings(tmp_path_factory, monkeypatch):
    """The window's remembered choices (QSettings) in a folder of the test's, never the user's."""
    from PyQt6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("settings")
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(folder))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))


def stop_daemon(process) -> None:
    """Stop a daemon a test's window started, in order (SIGTERM: its runs rest and end aborted), killing it if it
    hangs."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except Exception:
            process.kill()
            process.wait()


@pytest.fixture
def daemon_stopper():
    """:func:`stop_daemon`, for test modules (conftest functions are not importable under importlib mode)."""
    return stop_daemon
