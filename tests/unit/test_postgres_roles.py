"""PostgreSQL on the secure services, the pure parts: pg_hba, the roles' statements, the DSNs,
the per-prefix grants and the refusal a role that may not migrate gets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from cqrs.access.postgres import grant_statements
from cqrs.services.layout import Layout
from cqrs.services.postgres import HBA, Postgres
from cqrs.services.postgres_roles import (
    PROJECTOR,
    QUERY,
    ROLE_OF,
    SECURE_HBA,
    database_statements,
    default_privilege_statements,
    login_role_statements,
    role_dsn,
)
from projections.postgres.migrate import NotMigrated


def rules(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


def test_secure_hba_takes_tcp_over_tls_with_scram_only() -> None:
    for rule in rules(SECURE_HBA):
        kind, method = rule[0], rule[-1]
        assert kind in ("hostssl", "hostnossl", "local"), rule
        assert method == ("reject" if kind == "hostnossl" else "scram-sha-256"), rule
    assert {tuple(rule[3:]) for rule in rules(SECURE_HBA) if rule[0] == "hostnossl"} == {
        ("0.0.0.0/0", "reject"), ("::/0", "reject")}
    assert [rule[2] for rule in rules(SECURE_HBA) if rule[0] == "local"] == ["postgres"]
    first_ssl = next(n for n, rule in enumerate(rules(SECURE_HBA)) if rule[0] == "hostssl")
    assert all(rule[0] == "hostnossl" for rule in rules(SECURE_HBA)[:first_ssl])


def test_the_service_writes_the_hba_of_its_mode(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path)
    assert Postgres(layout, None).hba == HBA
    assert Postgres(replace(layout, secure=True), None).hba == SECURE_HBA
    assert Postgres(layout, None).login_passwords() == {}


def test_login_roles_are_plain_logins_and_the_query_role_reads_only() -> None:
    statements = login_role_statements({PROJECTOR: "p'w", QUERY: "secret"})
    for role in (PROJECTOR, QUERY):
        alter = next(s for s in statements if s.startswith(f"ALTER ROLE {role} LOGIN"))
        for attribute in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION",
                          "NOBYPASSRLS"):
            assert attribute in alter
    assert "PASSWORD 'p''w'" in "\n".join(statements)
    assert f"ALTER ROLE {QUERY} SET default_transaction_read_only = on" in statements
    assert all("\n" not in statement for statement in statements)  # single-user mode's lines


def test_only_the_owner_creates_and_its_objects_open_by_default() -> None:
    statements = database_statements()
    assert "REVOKE ALL ON DATABASE cqrs FROM PUBLIC" in statements
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in statements
    assert f"GRANT CONNECT ON DATABASE cqrs TO {PROJECTOR}, {QUERY}" in statements
    defaults = default_privilege_statements()
    assert set(defaults) <= set(statements)
    assert all(s.startswith("ALTER DEFAULT PRIVILEGES FOR ROLE cqrs GRANT") for s in defaults)
    assert (f"ALTER DEFAULT PRIVILEGES FOR ROLE cqrs GRANT SELECT ON TABLES TO {QUERY}"
            in defaults)
    assert not any("CREATE" in s or "TRUNCATE" in s for s in defaults)
    assert all(" FOR ROLE " not in s for s in default_privilege_statements(for_owner=False))


def test_each_role_file_gets_a_verified_tls_dsn() -> None:
    assert ROLE_OF == {"admin": "cqrs", "projector-postgres": PROJECTOR, "client": QUERY}
    dsn = role_dsn(QUERY, "a/b:c@d", "127.0.0.1", 15432, "/state/tls/ca.pem")
    assert conninfo_to_dict(dsn) == {
        "user": QUERY, "password": "a/b:c@d", "host": "127.0.0.1", "port": "15432",
        "dbname": "cqrs", "sslmode": "verify-full", "sslrootcert": "/state/tls/ca.pem"}


def test_the_prefix_grants() -> None:
    text = [statement.as_string(None) for statement in grant_statements("sec_ab")]
    assert text == [
        f'GRANT USAGE ON SCHEMA "sec_ab" TO "{PROJECTOR}", "{QUERY}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "sec_ab" TO "{PROJECTOR}"',
        f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "sec_ab" TO "{PROJECTOR}"',
        'REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "sec_ab"."schema_migrations", '
        f'"sec_ab"."schema_owner" FROM "{PROJECTOR}"',
        f'GRANT SELECT ON ALL TABLES IN SCHEMA "sec_ab" TO "{QUERY}"',
        f'GRANT SELECT ON ALL SEQUENCES IN SCHEMA "sec_ab" TO "{QUERY}"',
    ]


def test_not_migrated_says_what_to_run() -> None:
    error = NotMigrated("sec_ab", "sec-ab.", "does not exist", "permission denied for database")
    assert str(error).startswith("PostgreSQL schema 'sec_ab' of topic prefix 'sec-ab.' does not "
                                 "exist, and this role may not migrate it (the server said: "
                                 "permission denied for database)")
    assert "`cqrs access apply`" in str(error)
