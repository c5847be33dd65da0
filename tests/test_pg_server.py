"""The throwaway PostgreSQL server the tests and benches use (tests/pg_server.py): it runs unprivileged,
keeps its data over a restart or a crash, hands out independent databases, and a restart breaks open
connections with ``psycopg.OperationalError`` (the error the app's retries will key on)."""

from pathlib import Path

import psycopg
import pytest


def _uid_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def test_a_connection_reaches_the_database_it_was_made_for(postgres_server, postgres_url):
    with psycopg.connect(postgres_url) as conn:
        database, version, fsync = conn.execute(
            "SELECT current_database(), current_setting('server_version_num')::int, current_setting('fsync')"
        ).fetchone()
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert database == postgres_url.rsplit("/", 1)[1]
        assert version >= 150000 and fsync == "off"
        assert _uid_of(backend) != 0   # PostgreSQL refuses root: the server runs as an unprivileged user
    assert postgres_url.startswith(f"postgresql://postgres@127.0.0.1:{postgres_server.port}/")


def test_two_databases_are_independent(postgres_server):
    first, second = postgres_server.create_database(), postgres_server.create_database()
    assert first != second
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_here (id INTEGER)")
    with psycopg.connect(second, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('only_here')").fetchone()[0] is None
        conn.execute("CREATE TABLE only_here (id INTEGER)")   # the same name is free here
    for url in (first, second):
        postgres_server.drop_database(url)


def test_data_survives_a_restart_and_a_crash(postgres_server, postgres_url):
    port = postgres_server.port
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (word TEXT)")
        conn.execute("INSERT INTO kept VALUES ('before restart')")
    postgres_server.restart()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO kept VALUES ('before crash')")
    postgres_server.kill()
    assert not postgres_server.running
    postgres_server.start()
    assert postgres_server.port == port   # URLs handed out earlier stay valid
    with psycopg.connect(postgres_url) as conn:
        assert [r[0] for r in conn.execute("SELECT word FROM kept ORDER BY word")] == ["before crash", "before restart"]


def test_a_connection_broken_by_a_restart_raises_operational_error(postgres_server, postgres_url):
    conn = psycopg.connect(postgres_url, autocommit=True)
    try:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        postgres_server.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        assert conn.closed   # broken for good: the app has to reconnect
    finally:
        conn.close()
    postgres_server.stop()
    try:   # reconnecting while the server is down fails the same way
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_url, connect_timeout=5)
    finally:
        postgres_server.start()
    with psycopg.connect(postgres_url) as fresh:
        assert fresh.execute("SELECT 1").fetchone() == (1,)
