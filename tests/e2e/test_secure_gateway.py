"""The gateway on the secure services, as the client role: HTTPS with a certificate of the local
CA, API keys on the command routes, its queries through the read-only PostgreSQL role and the
search query user, and its readiness through them too.

The processor and both projectors run as subprocesses, each as its own role, on a prefix the
admin granted (`cqrs access apply`'s `grant_all`).
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from cqrs.access.grants import grant_all
from cqrs.config import Config
from cqrs.gateway import keys
from cqrs.services.tls import LocalCA
from tests.support.metrics import free_port
from tests.support.pipeline import stop_process
from tests.support.secure import SecureStack
from topics import apply

WORKERS = {"processor": ["processor"], "postgres": ["project", "postgres"],
           "search": ["project", "search"]}


@dataclass
class Gateway:
    url: str
    ca: Path
    commands_key: str
    read_key: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=15,
                            verify=ssl.create_default_context(cafile=str(self.ca)))


def _until(what: str, check: Callable[[], bool], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}:\n{log.read_text(errors='replace')[-4000:]}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def gateway(secure_stack: SecureStack, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("secure-gateway")
    prefix = f"secure-gw-{uuid.uuid4().hex[:6]}."
    admin = secure_stack.settings("admin", topic_prefix=prefix, partitions=3,
                              credentials_dir=secure_stack.layout.credentials_dir)
    config = Config.from_settings(admin)
    assert apply(AdminClient(config.kafka.client_config()), config.catalogue).ok
    grant_all(admin, lambda line: None)
    env = secure_stack.env(CQRS_TOPIC_PREFIX=prefix, CQRS_PARTITIONS="3",
                           CQRS_PROCESSOR_METRICS_PORT="0",
                           CQRS_PROJECTOR_POSTGRES_METRICS_PORT="0",
                           CQRS_PROJECTOR_SEARCH_METRICS_PORT="0")
    certificate = LocalCA(secure_stack.layout.tls_dir).issue("gateway")
    keys_file = folder / "keys"
    commands_key, _ = keys.add(keys_file, "ci", "commands")
    read_key, _ = keys.add(keys_file, "dashboard", "read")
    port = free_port()
    started: list[subprocess.Popen[bytes]] = []
    log = folder / "gateway.log"
    try:
        for name, args in WORKERS.items():
            with (folder / f"{name}.log").open("ab") as out:
                started.append(subprocess.Popen([sys.executable, "-m", "cqrs", *args], env=env,
                                                stdout=out, stderr=subprocess.STDOUT))
        with log.open("ab") as out:
            started.append(subprocess.Popen(
                [sys.executable, "-m", "cqrs", "gateway", "--port", str(port),
                 "--keys-file", str(keys_file), "--tls-cert", str(certificate.cert),
                 "--tls-key", str(certificate.key)],
                env=env, stdout=out, stderr=subprocess.STDOUT))
        found = Gateway(f"https://127.0.0.1:{port}", secure_stack.layout.ca_file,
                        commands_key, read_key, log)
        with found.client() as client:
            def ready() -> bool:
                assert all(process.poll() is None for process in started), [
                    (folder / f"{name}.log").read_text(errors="replace")[-3000:]
                    for name in WORKERS]
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False
            _until("the gateway ready on the secure services", ready, log, 90)
        yield found
    finally:
        for process in reversed(started):
            stop_process(process)


def test_commands_need_a_commands_key_and_queries_read_through_the_query_roles(
        gateway: Gateway) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    body = {"aggregate_id": user, "data": {"email": f"{user}@example.com", "name": "Ada Secure"}}
    with gateway.client() as client:
        assert client.post("/commands/CreateUser", json=body).status_code == 401
        wrong = client.post("/commands/CreateUser", json=body,
                            headers={"Authorization": "Bearer cqrs_nope_wrong"})
        assert wrong.status_code == 401
        read = client.post("/commands/CreateUser", json=body,
                           headers={"Authorization": f"Bearer {gateway.read_key}"})
        assert read.status_code == 403, read.text
        sent = client.post("/commands/CreateUser?wait=20", json=body,
                           headers={"Authorization": f"Bearer {gateway.commands_key}"})
        assert sent.status_code == 200, (sent.text, gateway.log.read_text())
        assert sent.json()["status"] == "accepted", sent.text
        row = client.get(f"/users/{user}?min_version=1&wait=20")
        assert row.status_code == 200, row.text
        assert row.json()["name"] == "Ada Secure"

        def found() -> bool:
            answer = client.get("/users", params={"q": "Ada Secure"})
            assert answer.status_code == 200, answer.text
            return any(hit["id"] == user for hit in answer.json()["hits"])
        _until("the user found by the search query user", found, gateway.log, 30)
        assert client.get("/stats/users").status_code == 200


def test_plain_http_to_the_gateway_fails(gateway: Gateway) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(gateway.url.replace("https://", "http://") + "/livez", timeout=5)
