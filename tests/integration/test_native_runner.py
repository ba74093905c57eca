"""`cqrs services up` is idempotent, `status` reports each running service, and PostgreSQL asks
every connection for the password `up` generated."""

from __future__ import annotations

import stat

import psycopg
import pytest

from cqrs.services import Layout, Runner
from cqrs.services.postgres import HBA, Postgres
from cqrs.services.process import read_pid


@pytest.fixture
def native_runner() -> Runner:
    layout = Layout.from_env()
    if read_pid(layout.pid_file("kafka"), Runner(layout, ["kafka"]).services[0].owns) is None:
        pytest.skip("the services were not started by the native runner (testcontainers run)")
    return Runner(layout)


def test_a_second_up_finds_the_services_running(native_runner: Runner) -> None:
    said: list[str] = []
    native_runner.up(said.append)
    for name in ("kafka", "elasticsearch", "postgres"):
        assert any(line.startswith(f"{name}: already running") for line in said), said
    assert not any("started" in line or "fetching" in line for line in said), said


def test_status_names_pid_log_and_memory(native_runner: Runner) -> None:
    statuses = native_runner.status()
    assert [s.name for s in statuses] == ["kafka", "elasticsearch", "postgres"]
    for status in statuses:
        assert status.ready
        assert status.pid is not None
        assert status.log_file.exists()
        assert status.rss_mib > 10


@pytest.fixture
def native_postgres() -> Postgres:
    runner = Runner(Layout.from_env(), ["postgres"])
    postgres = runner.services[0]
    assert isinstance(postgres, Postgres)
    if read_pid(runner.layout.pid_file("postgres"), postgres.owns) is None:
        pytest.skip("PostgreSQL was not started by the native runner (testcontainers run)")
    return postgres


def test_postgres_refuses_connections_without_the_password(native_postgres: Postgres) -> None:
    postgres, layout = native_postgres, native_postgres.layout
    assert (postgres.data / "pg_hba.conf").read_text() == HBA
    socket_dir = postgres.socket_dir.stat()
    assert stat.S_IMODE(socket_dir.st_mode) == 0o700
    assert stat.S_IMODE(layout.postgres_password_file.stat().st_mode) == 0o600
    no_password = {"passfile": "/dev/null", "connect_timeout": 5}
    for host, user in ((layout.host, "cqrs"), (str(postgres.socket_dir), "postgres")):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host=host, port=layout.postgres_port, user=user, dbname="postgres",
                            password="", **no_password)  # type: ignore[arg-type]
    with psycopg.connect(layout.postgres_dsn, **no_password) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT current_user").fetchone() == ("cqrs",)
