"""The keys file and `cqrs gateway keys add|list|revoke`, and how `cqrs gateway` starts (uvicorn
replaced): keys, loopback refusal, TLS."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from cqrs.cli import gateway as gateway_cli
from cqrs.gateway import keys
from cqrs.gateway.keyring import Keyring
from cqrs.settings import Settings


def run(*args: str, settings: Settings | None = None) -> Any:
    return CliRunner().invoke(app, list(args), obj=Bootstrap(settings or Settings()))


def test_add_creates_a_private_file_and_prints_only_the_key(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "keys"
    result = run("gateway", "keys", "add", "ci", "--scope", "commands", "--keys-file", str(path))
    assert result.exit_code == 0, result.output
    raw = result.stdout.strip()
    assert result.stdout == raw + "\n"
    assert keys.key_id_of(raw) is not None
    assert "printed once" in result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert raw not in text
    assert raw.split("_", 2)[2] not in text
    [key] = keys.load(path)
    assert (key.name, key.scope) == ("ci", "commands")
    assert key.verify(raw)
    assert not key.verify(raw[:-1] + ("A" if raw[-1] != "A" else "B"))


def test_list_shows_names_scopes_and_ids_never_hashes(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    _, reader = keys.add(path, "dashboard", "read")
    result = run("gateway", "keys", "list", "--keys-file", str(path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCOPE", "ID"]
    assert lines[2].split() == ["dashboard", "read", reader.key_id]
    assert "scrypt" not in result.output
    assert reader.digest.split(":")[-1] not in result.output


def test_revoke_removes_one_key_and_keeps_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    keys.add(path, "old", "commands")
    result = run("gateway", "keys", "revoke", "old", "--keys-file", str(path))
    assert result.exit_code == 0, result.output
    assert [key.name for key in keys.load(path)] == ["ci"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left
    again = run("gateway", "keys", "revoke", "old", "--keys-file", str(path))
    assert again.exit_code == 1
    assert "no key named 'old'" in again.stderr


def test_add_refuses_a_taken_or_invalid_name(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    taken = run("gateway", "keys", "add", "ci", "--keys-file", str(path))
    assert (taken.exit_code, taken.stdout) == (1, "")
    assert "exists" in taken.stderr
    assert run("gateway", "keys", "add", "bad name", "--keys-file", str(path)).exit_code == 1
    assert run("gateway", "keys", "add", "x", "--scope", "admin",
               "--keys-file", str(path)).exit_code == 2
    assert len(keys.load(path)) == 1


def test_a_file_open_to_others_is_refused_saying_chmod_600(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    path.chmod(0o644)
    for args in (["list"], ["add", "other"], ["revoke", "ci"]):
        result = run("gateway", "keys", *args, "--keys-file", str(path))
        assert result.exit_code == 1, args
        assert f"chmod 600 {path}" in result.stderr
    with pytest.raises(keys.KeysFileError, match="chmod 600"):
        Keyring(path)
    assert len(path.read_text().splitlines()) == 2  # nothing was appended


def test_a_malformed_line_is_refused_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    with path.open("a") as file:
        file.write("intruder admin 0123456789ab plain\n")
    with pytest.raises(keys.KeysFileError, match=r"keys:3: not a key line"):
        keys.load(path)


def test_the_keys_file_comes_from_the_settings_or_the_group_option(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    added = run("gateway", "keys", "add", "ci", settings=Settings(gateway_keys_file=path))
    assert added.exit_code == 0, added.output
    listed = run("gateway", "--keys-file", str(path), "keys", "list")
    assert "ci" in listed.stdout
    missing = run("gateway", "keys", "list")
    assert (missing.exit_code, "CQRS_GATEWAY_KEYS_FILE" in missing.stderr) == (1, True)
    mixed = run("gateway", "--port", "9000", "keys", "list", "--keys-file", str(path))
    assert mixed.exit_code == 2


class Served:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, asgi: Any, **options: Any) -> None:
        self.calls.append((asgi, options))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    fake = Served()
    monkeypatch.setattr(gateway_cli.uvicorn, "run", fake)
    monkeypatch.setattr(gateway_cli, "configure_logging",
                        lambda ctx, level: {"root": {"level": "INFO"}})
    return fake


def test_gateway_port_still_serves_open_on_loopback(served: Served) -> None:
    result = run("gateway", "--port", "8123")
    assert result.exit_code == 0, result.output
    [(asgi, options)] = served.calls
    assert (options["host"], options["port"]) == ("127.0.0.1", 8123)
    assert "ssl_certfile" not in options
    assert asgi.state.authenticator is None


def test_a_non_loopback_host_without_keys_is_refused(served: Served) -> None:
    result = run("gateway", "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "cqrs gateway keys add" in result.stderr
    assert served.calls == []
    allowed = run("gateway", "--host", "0.0.0.0", "--allow-unauthenticated")
    assert allowed.exit_code == 0, allowed.output


def test_keys_and_tls_from_options_or_settings(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("cert")
    key.write_text("key")
    result = run("gateway", "--host", "0.0.0.0", "--keys-file", str(path), "--queries-need-key",
                 "--tls-cert", str(cert), "--tls-key", str(key))
    assert result.exit_code == 0, result.output
    settings = Settings(gateway_keys_file=path, gateway_tls_cert=cert, gateway_tls_key=key)
    assert run("gateway", "--host", "10.1.2.3", settings=settings).exit_code == 0
    for asgi, options in served.calls:
        assert (options["ssl_certfile"], options["ssl_keyfile"]) == (str(cert), str(key))
        assert len(asgi.state.authenticator.keyring) == 1
    assert served.calls[0][0].state.authenticator.queries_need_key
    assert not served.calls[1][0].state.authenticator.queries_need_key
    half = run("gateway", "--tls-cert", str(cert))
    assert (half.exit_code, "--tls-cert and --tls-key go together" in half.stderr) == (2, True)


def test_a_keys_file_open_to_others_stops_the_start(served: Served, tmp_path: Path) -> None:
    path = tmp_path / "keys"
    keys.add(path, "ci", "commands")
    path.chmod(0o640)
    result = run("gateway", "--keys-file", str(path))
    assert result.exit_code == 2
    assert f"chmod 600 {path}" in result.stderr
    assert served.calls == []
    needs = run("gateway", "--queries-need-key")
    assert (needs.exit_code, "needs a keys file" in needs.stderr) == (2, True)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("gateway.example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert gateway_cli.is_loopback(host) is loopback
