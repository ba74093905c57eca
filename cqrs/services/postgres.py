"""PostgreSQL: a cluster of the Debian server binaries in the project's state directory."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psycopg

from cqrs.services.base import Launch, Say, Service
from cqrs.services.credentials import ensure_secret
from cqrs.services.errors import StartFailed
from cqrs.services.prereqs import find_postgres_bin

_ROLE = "cqrs"
_SUPERUSER = "postgres"

HBA = """\
# Written by `cqrs services up` at every start (edits are overwritten): password (SCRAM)
# authentication for every connection, over the unix socket and loopback TCP alike.
local   all           all                  scram-sha-256
host    all           all   127.0.0.1/32   scram-sha-256
host    all           all   ::1/128        scram-sha-256
local   replication   all                  scram-sha-256
host    replication   all   127.0.0.1/32   scram-sha-256
host    replication   all   ::1/128        scram-sha-256
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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

    @property
    def superuser_password_file(self) -> Path:
        return self.home / "superuser.password"

    def prepare(self, say: Say) -> Launch:
        bin_dir = find_postgres_bin()
        # Only the service user may enter the socket directory (the socket itself is 0777).
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o700)
        superuser_password = ensure_secret(self.superuser_password_file)
        role_password = ensure_secret(self.layout.postgres_password_file)
        if not (self.data / "PG_VERSION").exists():
            say(f"  initialising a cluster in {self.data}")
            self.data.mkdir(parents=True, exist_ok=True)
            self._chown(self.home)
            self._run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", _SUPERUSER,
                       "--auth=scram-sha-256", f"--pwfile={self.superuser_password_file}",
                       "-E", "UTF8", "--locale=C.UTF-8"], "initdb")
        hba = self.data / "pg_hba.conf"
        if hba.read_text() != HBA:
            say("  password (scram-sha-256) authentication for every connection (pg_hba.conf)")
            hba.write_text(HBA)
        self._chown(self.home)
        self._set_passwords(bin_dir, superuser_password, role_password)
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

    def _run(self, command: list[str], what: str, stdin: str | None = None,
             secrets_: tuple[str, ...] = ()) -> None:
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, check=False,
            user=self.user, group=self.user, extra_groups=[] if self.user else None,
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"},
        )
        if result.returncode != 0:
            output = result.stdout + result.stderr
            for secret in secrets_:
                output = output.replace(secret, "********")
            raise StartFailed(f"{what} failed:\n{output}")

    def _set_passwords(self, bin_dir: Path, superuser_password: str, role_password: str) -> None:
        """Set both roles' passwords to those of the files (creating the role ``cqrs``), in
        single-user mode: the server is stopped, so this needs no authentication at all and
        converts a cluster that used ``trust`` as well as one whose files were regenerated."""
        statements = [
            "SET password_encryption = 'scram-sha-256'",
            f"ALTER ROLE {_SUPERUSER} PASSWORD {_literal(superuser_password)}",
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{_ROLE}') THEN "
            f"CREATE ROLE {_ROLE} LOGIN CREATEDB; END IF; END$$",
            f"ALTER ROLE {_ROLE} PASSWORD {_literal(role_password)}",
        ]
        self._run([str(bin_dir / "postgres"), "--single", "-D", str(self.data),
                   "-c", "exit_on_error=on", "-c", "log_min_error_statement=panic", "postgres"],
                  "setting the PostgreSQL passwords (single-user mode)",
                  stdin="\n".join(statements) + "\n",
                  secrets_=(superuser_password, role_password))

    def uses_passwords(self) -> bool:
        """True once the cluster's pg_hba.conf is the password-only one ``up`` writes."""
        try:
            return (self.data / "pg_hba.conf").read_text() == HBA
        except OSError:
            return False

    def _chown(self, path: Path) -> None:
        if self.user is None:
            return
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(path)], check=True)

    def _superuser(self) -> psycopg.Connection[tuple[object, ...]]:
        try:
            password: str | None = self.superuser_password_file.read_text().strip()
        except OSError:
            password = None
        return psycopg.connect(
            host=str(self.socket_dir), port=self.layout.postgres_port, user=_SUPERUSER,
            password=password, dbname="postgres", autocommit=True, connect_timeout=2,
        )

    def ready(self) -> bool:
        try:
            with self._superuser() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def after_start(self, say: Say) -> None:
        """Create the project's database once (``prepare`` made the role)."""
        if not self.uses_passwords():
            say("  postgres still accepts connections without a password (trust): run "
                "`cqrs services down postgres && cqrs services up postgres` to switch it to "
                "passwords (then `eval \"$(cqrs services env)\"` again)")
        with self._superuser() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_ROLE,)).fetchone():
                return
            say(f"  creating database {_ROLE!r}")
            conn.execute(f"CREATE DATABASE {_ROLE} OWNER {_ROLE}")

    def describe(self) -> str:
        return f"postgresql {self.layout.host}:{self.layout.postgres_port} (database cqrs)"
