"""The throwaway PostgreSQL server of tests/postgres.py, which the database backends' tests and benchmarks run on: it
starts, serves fresh independent databases over psycopg (LISTEN/NOTIFY included), listens on 127.0.0.1 only, and
leaves neither files nor an open port once stopped."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import psycopg
import pytest

pg = sys.modules["postgres"]  # tests/postgres.py, loaded by conftest.py


def test_a_fresh_database_stores_and_returns_rows(pg_url):
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE runs (id serial PRIMARY KEY, cell text NOT NULL)")
        conn.execute("INSERT INTO runs (cell) VALUES (%s), (%s)", ["Li|LLZTO|Li", "anode-free"])
        assert conn.execute("SELECT cell FROM runs ORDER BY id").fetchall() == [("Li|LLZTO|Li",), ("anode-free",)]


def test_databases_are_independent(postgres):
    first, second = postgres.create_database("first"), postgres.create_database("second")
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE runs (id int)")
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT to_regclass('runs')").fetchone() == (None,)


def test_notify_reaches_a_listener_on_another_connection(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as listener, psycopg.connect(pg_url, autocommit=True) as notifier:
        listener.execute("LISTEN queue")
        notifier.execute("NOTIFY queue, 'run 7 added'")
        received = list(listener.notifies(timeout=5, stop_after=1))
    assert [(n.channel, n.payload) for n in received] == [("queue", "run 7 added")]


def test_the_server_listens_on_127_0_0_1_only(postgres):
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)


def test_stop_removes_the_directory_and_closes_the_port(postgres):
    with pg.PostgresServer.start() as server:
        root, port = server.root, server.port
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not root.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_missing_binaries_are_named_with_the_package_to_install(monkeypatch):
    monkeypatch.setattr(pg, "find_bindir", lambda: None)
    assert pg.unavailable() == pg.NOT_INSTALLED
    with pytest.raises(pg.PostgresUnavailable, match="install the Debian package `postgresql`"):
        pg.PostgresServer.start()


def test_database_url_is_a_sqlite_file_or_a_fresh_postgresql_database(database_url):
    if not database_url.startswith("postgresql://"):
        assert Path(database_url).name == "registry.sqlite"
        return
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
