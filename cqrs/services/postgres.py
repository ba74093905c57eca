"""PostgreSQL: a cluster of the Debian server binaries in the project's state directory."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psycopg

from cqrs.services.base import Launch, Say, Service
from cqrs.services.errors import StartFailed
from cqrs.services.prereqs import find_postgres_bin

_ROLE = "cqrs"
_PASSWORD = "cqrs"  # noqa: S105 - a local development cluster on loopback


class Postgres(Service):
    name = "postgres"
    start_timeout = 60.0
    # SIGINT to the postmaster is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit.
    stop_signal = signal.SIGINT
    signal_leader_only = True

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def prepare(self, say: Say) -> Launch:
        bin_dir = find_postgres_bin()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            say(f"  initialising a cluster in {self.data}")
            self.data.mkdir(parents=True, exist_ok=True)
            self._chown(self.home)
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                 "--locale=C.UTF-8"],
                capture_output=True, text=True, check=False, user=self.user, group=self.user,
                env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
            )
            if result.returncode != 0:
                raise StartFailed(f"initdb failed:\n{result.stdout}{result.stderr}")
        self._chown(self.home)
        command = [
            str(bin_dir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.layout.postgres_port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={self.layout.host}",
            "-c", "max_connections=200",
            "-c", "shared_buffers=128MB",
            "-c", "fsync=on",
        ]
        return Launch(
            command=command,
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
            cwd=self.home,
            user=self.user,
            ports=(self.layout.postgres_port,),
        )

    def _chown(self, path: Path) -> None:
        if self.user is None:
            return
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(path)], check=True)

    def _superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir), port=self.layout.postgres_port, user="postgres",
            dbname="postgres", autocommit=True, connect_timeout=2,
        )

    def ready(self) -> bool:
        try:
            with self._superuser() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def after_start(self, say: Say) -> None:
        """Create the project's role and database once."""
        with self._superuser() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (_ROLE,)).fetchone():
                return
            say(f"  creating role and database {_ROLE!r}")
            conn.execute(f"CREATE ROLE {_ROLE} LOGIN CREATEDB PASSWORD '{_PASSWORD}'")
            conn.execute(f"CREATE DATABASE {_ROLE} OWNER {_ROLE}")

    def describe(self) -> str:
        return f"postgresql {self.layout.host}:{self.layout.postgres_port} (database cqrs)"
