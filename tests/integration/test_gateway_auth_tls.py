"""`cqrs gateway --tls-cert --tls-key --keys-file` as a process over the real services: HTTPS
only, 401 without a key, 403 for a read key on a command, 202 for a commands key."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cqrs.gateway import keys
from tests.support.metrics import free_port
from tests.support.pipeline import stop_process
from tests.support.services import Endpoints
from topics import Catalogue, apply

ROOT = Path(__file__).resolve().parents[2]
BODY = {"aggregate_id": "u-tls", "data": {"email": "tls@example.com", "name": "Tee Ellis"}}


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key."""
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256()))
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key.chmod(0o600)
    return cert, key


@dataclass
class Gateway:
    port: int
    cert: Path
    commands_key: str
    read_key: str
    log: Path

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cert))
        return httpx.Client(base_url=f"https://127.0.0.1:{self.port}", verify=context,
                            timeout=10)


@pytest.fixture
def gateway(endpoints: Endpoints, topic_prefix: str, tmp_path: Path) -> Iterator[Gateway]:
    admin = AdminClient({"bootstrap.servers": endpoints.kafka_bootstrap})
    catalogue = Catalogue(prefix=topic_prefix, partitions=1, replication_factor=1)
    assert apply(admin, catalogue).ok
    cert, key = self_signed(tmp_path)
    keys_file = tmp_path / "keys"
    commands_key, _ = keys.add(keys_file, "ci", "commands")
    read_key, _ = keys.add(keys_file, "dashboard", "read")
    port = free_port()
    env = {**os.environ, "CQRS_TOPIC_PREFIX": topic_prefix,
           "CQRS_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap, "CQRS_PG_DSN": endpoints.pg_dsn,
           "CQRS_ES_URL": endpoints.es_url}
    log = tmp_path / "gateway.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cqrs", "gateway", "--port", str(port),
             "--keys-file", str(keys_file), "--tls-cert", str(cert), "--tls-key", str(key)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    found = Gateway(port, cert, commands_key, read_key, log)
    try:
        _wait_serving(found, process)
        yield found
    finally:
        stop_process(process)
        admin.delete_topics([spec.name for spec in catalogue.specs()])


def _wait_serving(gateway: Gateway, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    with gateway.client() as client:
        while True:
            assert process.poll() is None, gateway.log.read_text(errors="replace")
            try:
                if client.get("/livez").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, gateway.log.read_text(errors="replace")
            time.sleep(0.3)


def test_keys_over_https(gateway: Gateway) -> None:
    with gateway.client() as client:
        missing = client.post("/commands/CreateUser", json=BODY)
        assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
        read = client.post("/commands/CreateUser", json=BODY,
                           headers={"Authorization": f"Bearer {gateway.read_key}"})
        assert read.status_code == 403, read.text
        sent = client.post("/commands/CreateUser", json=BODY,
                           headers={"X-API-Key": gateway.commands_key})
        assert sent.status_code == 202, (sent.text, gateway.log.read_text(errors="replace"))
        assert sent.json()["stream_id"] == "user-u-tls"
        metrics = client.get("/metrics").text
    assert 'cqrs_gateway_auth_failures_total{prefix=' in metrics
    assert 'reason="missing"} 1.0' in metrics
    assert 'reason="scope"} 1.0' in metrics
    logged = gateway.log.read_text(errors="replace")
    assert "request refused" in logged
    for raw in (gateway.commands_key, gateway.read_key):
        assert raw.split("_", 2)[2] not in logged


def test_plain_http_to_the_tls_port_fails(gateway: Gateway) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{gateway.port}/livez", timeout=5)
