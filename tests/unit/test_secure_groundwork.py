"""The local CA, the roles' credentials files and how an entry point reads its own."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from cqrs.services.credentials import CredentialsError, RoleFiles, check_private, ensure_secret
from cqrs.services.layout import ROLE_VARIABLES, Layout
from cqrs.services.tls import LocalCA
from cqrs.settings import Settings


def test_the_ca_issues_certificates_for_loopback_that_verify_and_are_kept(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls")
    issued = ca.issue("kafka", client=True)
    cert = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert.read_bytes()))
    assert issued.key.stat().st_mode & 0o777 == 0o600
    assert ca.key.stat().st_mode & 0o777 == 0o600
    # A client trusting the CA accepts the chain (ssl's own loader).
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)
    before = issued.cert.read_bytes()
    assert ca.issue("kafka", client=True).cert.read_bytes() == before  # kept, not reissued


def test_a_certificate_of_another_ca_is_reissued(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls")
    first = ca.issue("postgres").cert.read_bytes()
    ca.cert.unlink()
    ca.key.unlink()
    assert ca.issue("postgres").cert.read_bytes() != first


def test_role_files_are_private_merged_and_read_back(tmp_path: Path) -> None:
    roles = RoleFiles(tmp_path / "credentials")
    roles.set("processor", {"CQRS_KAFKA_SASL_USERNAME": "processor"})
    roles.set("processor", {"CQRS_KAFKA_SASL_PASSWORD": "s3cret-_x"})
    assert roles.read("processor") == {"CQRS_KAFKA_SASL_USERNAME": "processor",
                                       "CQRS_KAFKA_SASL_PASSWORD": "s3cret-_x"}
    assert roles.path("processor").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "credentials").stat().st_mode & 0o777 == 0o700
    assert roles.secret("kafka-admin") == roles.secret("kafka-admin")  # generated once
    with pytest.raises(ValueError, match="quote"):
        roles.set("client", {"CQRS_PG_DSN": "it's"})


def test_a_secret_file_others_may_read_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "client.env"
    ensure_secret(path)
    check_private(path)
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match=f"chmod 600 {path}"):
        check_private(path)
    with pytest.raises(CredentialsError, match="services up --secure"):
        check_private(tmp_path / "missing.env")


def test_each_role_reads_its_own_file_and_the_environment_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roles = RoleFiles(tmp_path)
    roles.set("processor", {"CQRS_KAFKA_SASL_USERNAME": "processor",
                            "CQRS_KAFKA_SASL_PASSWORD": "p-secret"})
    roles.set("client", {"CQRS_KAFKA_SASL_USERNAME": "client",
                         "CQRS_PG_DSN": "postgresql://q:q-secret@h/db?sslmode=verify-full"})
    for key in ROLE_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CQRS_CREDENTIALS_DIR", str(tmp_path))
    processor = Settings.for_role("processor")
    assert (processor.kafka_sasl_username, processor.kafka_sasl_password) == (
        "processor", "p-secret")
    client = Settings.for_role("client")
    assert client.kafka_sasl_password is None
    assert client.pg_dsn.endswith("sslmode=verify-full")
    assert "p-secret" not in repr(processor)
    assert "q-secret" not in repr(client)
    monkeypatch.setenv("CQRS_KAFKA_SASL_USERNAME", "given")
    assert Settings.for_role("processor").kafka_sasl_username == "given"
    monkeypatch.setenv("CQRS_CREDENTIALS_FILE", str(roles.path("client")))
    assert Settings.for_role("processor").pg_dsn.startswith("postgresql://q:")


def test_services_env_names_the_credentials_and_prints_no_secret(tmp_path: Path) -> None:
    roles = RoleFiles(tmp_path / "credentials")
    secret = roles.secret("kafka-admin")
    roles.set("admin", {"CQRS_KAFKA_SASL_PASSWORD": secret})
    env = {"CQRS_SERVICES_STATE_DIR": str(tmp_path), "CQRS_SERVICES_SECURE": "true",
           "PATH": "/usr/bin:/bin"}
    printed = subprocess.run([sys.executable, "-m", "cqrs", "services", "env"], env=env,
                             capture_output=True, text=True, check=True).stdout
    assert secret not in printed
    assert f"export CQRS_CREDENTIALS_DIR={tmp_path / 'credentials'}" in printed
    assert "export CQRS_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in printed
    assert "export CQRS_ES_URL=https://127.0.0.1:9200" in printed
    for key in ROLE_VARIABLES:
        assert f"unset {key}" in printed
    plain = Layout.from_env({"CQRS_SERVICES_STATE_DIR": str(tmp_path / "plain")}).client_env()
    assert plain["CQRS_CREDENTIALS_DIR"] is None
    assert plain["CQRS_KAFKA_SASL_PASSWORD"] is None


def test_a_role_without_a_dsn_never_gets_the_owners(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Layout.from_env({"CQRS_SERVICES_STATE_DIR": str(tmp_path)})
    ensure_secret(layout.postgres_password_file)
    owner = layout.postgres_password_file.read_text().strip()
    roles = RoleFiles(tmp_path / "credentials")
    roles.set("processor", {"CQRS_KAFKA_SASL_USERNAME": "processor"})
    for key in ROLE_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CQRS_SERVICES_STATE_DIR", str(tmp_path))
    assert owner in Settings().pg_dsn  # plaintext services: the owner's, as before
    monkeypatch.setenv("CQRS_CREDENTIALS_DIR", str(tmp_path / "credentials"))
    dsn = Settings.for_role("processor").pg_dsn
    assert owner not in dsn
    assert "sslmode=verify-full" in dsn
