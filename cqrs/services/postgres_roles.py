"""PostgreSQL's roles on the secure services: who logs in as what, and what `up` grants them.

| PostgreSQL role  | credentials file   | rights                                                 |
|------------------|--------------------|--------------------------------------------------------|
| `cqrs`           | admin              | owns the database and every schema: migrates, rebuilds |
| `cqrs_projector` | projector-postgres | SELECT/INSERT/UPDATE/DELETE on the read models' tables |
| `cqrs_query`     | client             | SELECT only (and every transaction read-only)          |

None of the three is a superuser; the superuser `postgres` logs in over the unix socket only
(mode 0700, the service user's), for `up`'s own administration. `up` makes the login roles and
the database-wide rules here (default privileges: every schema and table the owner creates later
is usable at once by the projector and the query role); `cqrs access apply`
(`cqrs.access.postgres`) migrates one topic prefix's schema and grants on it explicitly.
"""

from __future__ import annotations

from urllib.parse import quote

from cqrs.services.credentials import Role

DATABASE = "cqrs"
OWNER = "cqrs"
PROJECTOR = "cqrs_projector"
QUERY = "cqrs_query"
SUPERUSER = "postgres"
LOGIN_ROLES = (PROJECTOR, QUERY)
"""The roles `up --secure` makes beside the owner, each with a password of its own."""
ROLE_OF: dict[Role, str] = {"admin": OWNER, "projector-postgres": PROJECTOR, "client": QUERY}
"""Credentials file → the PostgreSQL role its `CQRS_PG_DSN` logs in as; no other file has one."""

TABLE_RIGHTS = {PROJECTOR: "SELECT, INSERT, UPDATE, DELETE", QUERY: "SELECT"}
SEQUENCE_RIGHTS = {PROJECTOR: "USAGE, SELECT, UPDATE", QUERY: "SELECT"}

SECURE_HBA = """\
# Written by `cqrs services up --secure` at every start (edits are overwritten): over TCP, TLS and
# password (SCRAM) authentication only; the unix socket (mode 0700) only for the superuser.
hostnossl all           all         0.0.0.0/0      reject
hostnossl all           all         ::/0           reject
hostssl   all           all         127.0.0.1/32   scram-sha-256
hostssl   all           all         ::1/128        scram-sha-256
local     all           postgres                   scram-sha-256
"""


def literal(text: str) -> str:
    """`text` as an SQL string literal (standard_conforming_strings is on)."""
    return "'" + text.replace("'", "''") + "'"


def secret_name(role: str) -> str:
    """The name of `role`'s password among `RoleFiles.secret`s (`postgres-cqrs_projector`)."""
    return f"postgres-{role}"


def login_role_statements(passwords: dict[str, str]) -> list[str]:
    """Make each login role of `passwords` (role → password) unless it exists, and set its
    password; the query role's transactions are read-only by default. Single-user mode's input:
    one statement per line."""
    statements: list[str] = []
    for role, password in passwords.items():
        statements += [
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN; END IF; END$$",
            f"ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS PASSWORD {literal(password)}",
        ]
    if QUERY in passwords:
        statements.append(f"ALTER ROLE {QUERY} SET default_transaction_read_only = on")
    return statements


def default_privilege_statements(for_owner: bool = True) -> list[str]:
    """What every schema, table and sequence the owner creates from now on grants by itself
    (`for_owner`: said by another role, the superuser; else by the owner itself)."""
    who = f" FOR ROLE {OWNER}" if for_owner else ""
    logins = ", ".join(LOGIN_ROLES)
    statements = [f"ALTER DEFAULT PRIVILEGES{who} GRANT USAGE ON SCHEMAS TO {logins}"]
    for role in LOGIN_ROLES:
        statements += [
            f"ALTER DEFAULT PRIVILEGES{who} GRANT {TABLE_RIGHTS[role]} ON TABLES TO {role}",
            f"ALTER DEFAULT PRIVILEGES{who} GRANT {SEQUENCE_RIGHTS[role]} ON SEQUENCES TO {role}",
        ]
    return statements


def database_statements() -> list[str]:
    """Run by the superuser in the project's database at every secure `up`: only the owner
    creates anything, the login roles may connect (nobody else), and the default privileges."""
    logins = ", ".join(LOGIN_ROLES)
    return [
        f"REVOKE ALL ON DATABASE {DATABASE} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {DATABASE} TO {logins}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        *default_privilege_statements(),
    ]


def role_dsn(role: str, password: str, host: str, port: int, ca_file: str) -> str:
    """`role`'s DSN: TLS, with the server's certificate verified against `ca_file` and its name
    against `host` (`verify-full`)."""
    return (f"postgresql://{role}:{quote(password, safe='')}@{host}:{port}/{DATABASE}"
            f"?sslmode=verify-full&sslrootcert={quote(ca_file, safe='/')}")
