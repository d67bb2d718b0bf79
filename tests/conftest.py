from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

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


# PostgreSQL: one throwaway server per session (tests/postgres.py), started only when a test asks for it.
_spec = importlib.util.spec_from_file_location("postgres", Path(__file__).parent / "postgres.py")
pg = sys.modules.setdefault("postgres", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(pg)


def _skip_or_fail(reason: str) -> NoReturn:
    """Skip, with the reason; under CI fail instead, so PostgreSQL's tests can never be skipped unnoticed."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _start_postgres() -> pg.PostgresServer:
    try:
        return pg.PostgresServer.start()
    except pg.PostgresUnavailable as e:
        reason = str(e)
    _skip_or_fail(reason)  # outside the except: the report is the reason, not a chained traceback


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    """The session's PostgreSQL server (skipped where it cannot start here, failed under CI)."""
    with _start_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres, request) -> str:
    """A fresh, empty database on the session's server, named after the test; its URL."""
    return postgres.create_database(request.node.name)


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each backend's database for the test: a SQLite file path, or a fresh PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "registry.sqlite")
    return request.getfixturevalue("pg_url")  # lazily: SQLite-only runs never start the server


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def store_db(request, monkeypatch) -> str:
    """Run the test on each backend of the store's database: the store's own SQLite file, or (LABCTL_DB) a fresh
    PostgreSQL database as a lab's."""
    if request.param == "postgresql":
        monkeypatch.setenv("LABCTL_DB", request.getfixturevalue("pg_url"))
    return request.param
