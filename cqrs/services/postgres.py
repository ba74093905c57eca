"""PostgreSQL: a cluster of the Debian server binaries in the project's state directory.

Secure (`Layout.secure`): TLS with the local CA's certificate and SCRAM passwords over TCP, no
plaintext connection at all, and the owner, projector and query roles of
`cqrs.services.postgres_roles`, each with its DSN in its credentials file.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

from cqrs.services.base import Launch, Say, Service
from cqrs.services.credentials import RoleFiles, ensure_secret, write_secret_file
from cqrs.services.errors import StartFailed
from cqrs.services.postgres_roles import (
    DATABASE,
    LOGIN_ROLES,
    ROLE_OF,
    SECURE_HBA,
    database_statements,
    literal,
    login_role_statements,
    role_dsn,
    secret_name,
)
from cqrs.services.prereqs import find_postgres_bin
from cqrs.services.tls import LocalCA

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

    @property
    def hba(self) -> str:
        """The pg_hba.conf `up` writes: TLS-only over TCP when the services are secure."""
        return SECURE_HBA if self.layout.secure else HBA

    @property
    def roles(self) -> RoleFiles:
        return RoleFiles(self.layout.credentials_dir)

    def login_passwords(self) -> dict[str, str]:
        """The projector's and the query role's passwords (secure services only; stable)."""
        if not self.layout.secure:
            return {}
        return {role: self.roles.secret(secret_name(role)) for role in LOGIN_ROLES}

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
        if hba.read_text() != self.hba:
            say("  TLS and password (scram-sha-256) authentication over TCP, no plaintext "
                "(pg_hba.conf)" if self.layout.secure else
                "  password (scram-sha-256) authentication for every connection (pg_hba.conf)")
            hba.write_text(self.hba)
        tls = self._install_certificate() if self.layout.secure else []
        self._chown(self.home)
        self._set_passwords(bin_dir, superuser_password, role_password, self.login_passwords())
        command = [
            str(bin_dir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.layout.postgres_port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={self.layout.host}",
            "-c", "max_connections=200",
            "-c", "shared_buffers=128MB",
            "-c", "fsync=on",
            *tls,
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

    def _install_certificate(self) -> list[str]:
        """The server's certificate from the local CA, copied where the service user reads it
        (PostgreSQL refuses a key that others may read, or that it does not own); its options."""
        issued = LocalCA(self.layout.tls_dir).issue("postgres")
        folder = self.home / "tls"
        cert, key = folder / "server.pem", folder / "server.key"
        write_secret_file(cert, issued.cert.read_bytes(), 0o644)
        write_secret_file(key, issued.key.read_bytes())
        return ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}",
                "-c", "ssl_min_protocol_version=TLSv1.2"]

    def _set_passwords(self, bin_dir: Path, superuser_password: str, role_password: str,
                       logins: dict[str, str]) -> None:
        """Set the roles' passwords to those of the files (creating the role ``cqrs``, and the
        `logins` roles of secure services), in single-user mode: the server is stopped, so this
        needs no authentication at all and converts a cluster that used ``trust`` as well as one
        whose files were regenerated."""
        statements = [
            "SET password_encryption = 'scram-sha-256'",
            f"ALTER ROLE {_SUPERUSER} PASSWORD {literal(superuser_password)}",
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{_ROLE}') THEN "
            f"CREATE ROLE {_ROLE} LOGIN CREATEDB; END IF; END$$",
            f"ALTER ROLE {_ROLE} PASSWORD {literal(role_password)}",
            *login_role_statements(logins),
        ]
        self._run([str(bin_dir / "postgres"), "--single", "-D", str(self.data),
                   "-c", "exit_on_error=on", "-c", "log_min_error_statement=panic", "postgres"],
                  "setting the PostgreSQL passwords (single-user mode)",
                  stdin="\n".join(statements) + "\n",
                  secrets_=(superuser_password, role_password, *logins.values()))

    def uses_passwords(self) -> bool:
        """True once the cluster's pg_hba.conf is the password-only one ``up`` writes."""
        try:
            return (self.data / "pg_hba.conf").read_text() == self.hba
        except OSError:
            return False

    def _chown(self, path: Path) -> None:
        if self.user is None:
            return
        subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(path)], check=True)

    def _superuser(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        try:
            password: str | None = self.superuser_password_file.read_text().strip()
        except OSError:
            password = None
        return psycopg.connect(
            host=str(self.socket_dir), port=self.layout.postgres_port, user=_SUPERUSER,
            password=password, dbname=dbname, autocommit=True, connect_timeout=2,
        )

    def ready(self) -> bool:
        try:
            with self._superuser() as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def after_start(self, say: Say) -> None:
        """Create the project's database once (``prepare`` made the role); secure services:
        the database's privileges, each role's password from its file (so a running server
        takes a rotated one, its open sessions going on), and each role's DSN in its
        credentials file."""
        if not self.uses_passwords():
            say("  postgres still accepts connections without a password (trust): run "
                "`cqrs services down postgres && cqrs services up postgres` to switch it to "
                "passwords (then `eval \"$(cqrs services env)\"` again)")
        with self._superuser() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (DATABASE,)).fetchone():
                say(f"  creating database {DATABASE!r}")
                conn.execute(f"CREATE DATABASE {DATABASE} OWNER {_ROLE}")
        if not self.layout.secure:
            return
        passwords = {_ROLE: self.layout.postgres_password_file.read_text().strip(),
                     **self.login_passwords()}
        with self._superuser(DATABASE) as conn:
            for statement in database_statements():
                conn.execute(statement.encode())
            for role, password in passwords.items():
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(_verifier(conn, role, password))))
        self._write_dsns(passwords, say)

    def _write_dsns(self, passwords: dict[str, str], say: Say) -> None:
        """Each role's `CQRS_PG_DSN` (TLS verified against the local CA) into its credentials
        file: the owner's to admin's, the projector's and the query role's to theirs."""
        for role, pg_role in ROLE_OF.items():
            dsn = role_dsn(pg_role, passwords[pg_role], self.layout.host,
                           self.layout.postgres_port, str(self.layout.ca_file))
            self.roles.set(role, {"CQRS_PG_DSN": dsn})
        say("  PostgreSQL DSNs written to the credentials files of "
            + ", ".join(f"{role} ({pg_role})" for role, pg_role in ROLE_OF.items()))

    def describe(self) -> str:
        tls = ", TLS only" if self.layout.secure else ""
        return f"postgresql {self.layout.host}:{self.layout.postgres_port} (database cqrs{tls})"


def _verifier(conn: psycopg.Connection[tuple[object, ...]], role: str, password: str) -> str:
    """`password`'s SCRAM-SHA-256 verifier, made by libpq: `ALTER ROLE ... PASSWORD` with it
    sets the password (existing sessions go on) without the password itself ever reaching
    the server, so that no log of the statement can hold it."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(),
                                        b"scram-sha-256").decode()
