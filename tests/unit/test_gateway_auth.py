"""API keys on the gateway's routes, over the fakes of test_gateway: 401, 403, scopes, reloads."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cqrs.bootstrap import Bootstrap
from cqrs.gateway import create_app, keys
from cqrs.gateway.auth import Authenticator
from cqrs.gateway.keyring import Keyring
from tests.unit.test_gateway import ALICE, Fakes
from tests.unit.test_gateway_metrics import samples

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Issued:
    """A keys file with a `commands` key and a `read` key, and the raw keys."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commands, _ = keys.add(path, "ci", "commands")
        self.read, _ = keys.add(path, "dashboard", "read")
        self.clock = Clock()
        self.keyring = Keyring(path, clock=self.clock)


@pytest.fixture
def issued(tmp_path: Path) -> Issued:
    return Issued(tmp_path / "keys")


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def serve(fakes: Fakes, issued: Issued, *, queries_need_key: bool = False) -> TestClient:
    app = create_app(Bootstrap(services=fakes.services).open_services, prefix="t.",
                     authenticator=Authenticator(issued.keyring, queries_need_key))
    return TestClient(app)


@pytest.fixture
def client(fakes: Fakes, issued: Issued) -> Iterator[TestClient]:
    with serve(fakes, issued) as test_client:
        yield test_client


def create_user(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/commands/CreateUser", json={"aggregate_id": "u1", "data": ALICE},
                       headers=headers or {})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def failures(client: TestClient, reason: str) -> float:
    labels = (("prefix", "t."), ("reason", reason))
    return samples(client).get(("cqrs_gateway_auth_failures_total", labels), 0.0)


def test_a_command_without_a_key_is_401_and_not_sent(client: TestClient, fakes: Fakes) -> None:
    response = create_user(client)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <key>" in response.json()["detail"]
    assert fakes.commands.sent == []
    assert failures(client, "missing") == 1


@pytest.mark.parametrize(("headers", "reason"), [
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
    ({"Authorization": "Bearer"}, "malformed"),
    ({"Authorization": "Bearer not-a-key"}, "malformed"),
    ({"X-API-Key": "cqrs_0123456789ab_" + "x" * 43}, "unknown"),
])
def test_malformed_and_unknown_keys_are_401(client: TestClient, fakes: Fakes,
                                            headers: dict[str, str], reason: str) -> None:
    response = create_user(client, headers)
    assert (response.status_code, response.headers["www-authenticate"]) == (401, "Bearer")
    assert set(response.json()) == {"detail"}
    assert fakes.commands.sent == []
    assert failures(client, reason) == 1


def test_a_wrong_secret_with_a_known_id_is_401(client: TestClient, issued: Issued) -> None:
    known_id = keys.key_id_of(issued.commands)
    forged = f"cqrs_{known_id}_{'A' * 43}"
    assert create_user(client, bearer(forged)).status_code == 401
    assert failures(client, "unknown") == 1


def test_a_read_key_on_a_command_route_is_403(client: TestClient, fakes: Fakes,
                                              issued: Issued) -> None:
    response = create_user(client, bearer(issued.read))
    assert response.status_code == 403
    assert "scope 'read'" in response.json()["detail"]
    assert fakes.commands.sent == []
    assert failures(client, "scope") == 1


def test_a_commands_key_sends_by_either_header(client: TestClient, fakes: Fakes,
                                               issued: Issued) -> None:
    assert create_user(client, bearer(issued.commands)).status_code == 202
    assert create_user(client, {"X-API-Key": issued.commands}).status_code == 202
    assert len(fakes.commands.sent) == 2


def test_queries_are_open_by_default(client: TestClient, fakes: Fakes) -> None:
    fakes.put_user("u1")
    assert client.get("/users/u1").status_code == 200
    assert client.get("/users?q=alice").status_code == 200


def test_queries_need_any_valid_key_when_told(fakes: Fakes, issued: Issued) -> None:
    fakes.put_user("u1")
    with serve(fakes, issued, queries_need_key=True) as client:
        refused = client.get("/users/u1")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
        assert client.get("/users/u1", headers=bearer("nope")).status_code == 401
        assert client.get("/users/u1", headers=bearer(issued.read)).status_code == 200
        assert client.get("/users/u1", headers={"X-API-Key": issued.commands}).status_code == 200
        assert client.get("/stats/users", headers=bearer(issued.read)).status_code == 200
        for open_route in ("/livez", "/healthz", "/readyz", "/metrics"):
            assert client.get(open_route).status_code != 401, open_route


def test_a_revoked_key_is_refused_after_the_next_reload(client: TestClient,
                                                        issued: Issued) -> None:
    assert create_user(client, bearer(issued.commands)).status_code == 202
    keys.revoke(issued.path, "ci")
    issued.clock.now += 0.5  # the file is looked at once a second at most: still cached
    assert create_user(client, bearer(issued.commands)).status_code == 202
    issued.clock.now += 1.0
    assert create_user(client, bearer(issued.commands)).status_code == 401
    fresh, _ = keys.add(issued.path, "ci-2", "commands")
    assert create_user(client, bearer(fresh)).status_code == 401  # not reloaded yet
    issued.clock.now += 1.0
    assert create_user(client, bearer(fresh)).status_code == 202
    assert create_user(client, bearer(issued.read)).status_code == 403  # still there


def test_an_unusable_keys_file_refuses_every_key(client: TestClient, issued: Issued,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    issued.path.chmod(0o644)
    issued.clock.now += 2
    with caplog.at_level(logging.ERROR):
        assert create_user(client, bearer(issued.commands)).status_code == 401
    assert "keys file unusable" in caplog.text
    issued.path.chmod(0o600)
    issued.clock.now += 2
    assert create_user(client, bearer(issued.commands)).status_code == 202


def test_verification_compares_in_constant_time_once_per_key(
    client: TestClient, issued: Issued, monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = keys.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys.hmac, "compare_digest", spy)
    for _ in range(3):
        assert create_user(client, bearer(issued.commands)).status_code == 202
    [(computed, stored)] = compared  # verified once, then from the cache
    assert computed == stored
    assert len(stored) == keys.SCRYPT_LENGTH


def test_the_raw_key_is_never_logged_nor_stored(fakes: Fakes, issued: Issued,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), serve(fakes, issued, queries_need_key=True) as client:
        create_user(client, bearer(issued.commands))
        create_user(client, bearer(issued.read))
        create_user(client, bearer(issued.commands[:-1]))
        client.get("/users/u1", headers={"X-API-Key": issued.read + "x"})
    refusals = [record for record in caplog.records if record.getMessage() == "request refused"]
    assert len(refusals) == 3
    logged = caplog.text + "".join(repr(vars(record)) for record in caplog.records)
    stored = issued.path.read_text()
    for raw in (issued.commands, issued.read):
        secret = raw.split("_", 2)[2]
        assert secret not in logged
        assert secret not in stored


def test_the_openapi_document_shows_the_security_schemes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "bearerFormat": "cqrs_<id>_<secret>",
                                 "description": schemes["bearer"]["description"]}
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    create = document["paths"]["/commands/CreateUser"]["post"]
    assert create["security"] == [{"bearer": []}, {"apiKey": []}]
    assert {"401", "403"} <= set(create["responses"])
    assert "security" not in document["paths"]["/users/{user_id}"]["get"]


def test_without_keys_everything_is_open_and_a_warning_says_so(
    fakes: Fakes, caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(Bootstrap(services=fakes.services).open_services)
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        assert create_user(client).status_code == 202
        assert "security" not in client.get("/openapi.json").json()["paths"][
            "/commands/CreateUser"]["post"]
    warned = [r for r in caplog.records if "unauthenticated" in r.getMessage()]
    assert len(warned) == 1
