from __future__ import annotations

import socket

import pytest


@pytest.fixture
def free_port() -> int:
    """A 127.0.0.1 port with nothing listening on it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _store_home(tmp_path, monkeypatch):
    """Every test gets its own store, never the user's."""
    monkeypatch.setenv("LABCTL_HOME", str(tmp_path / "labctl-home"))
