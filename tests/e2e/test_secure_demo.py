"""`cqrs demo` on the secure services: every step passes with each worker as its own role, and no
secret of any role shows in any output or log the run left.

The secure services (`cqrs services up --secure`: Kafka SASL_SSL with SCRAM and ACLs, PostgreSQL
over TLS with a role per task, Elasticsearch with security and a user per search role) run
beside the plaintext ones (`tests.support.secure.secure_stack`).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.secure import SecureStack

SECRET_KEYS = re.compile(r"PASSWORD|API_KEY")


def _secrets(stack: SecureStack) -> set[str]:
    """Every secret the services were given or made: the generated passwords, every role's
    password and API key, the password inside each DSN."""
    found: set[str] = set()
    secrets_dir = stack.layout.credentials_dir / "secrets"
    found |= {path.read_text().strip() for path in secrets_dir.iterdir() if path.is_file()}
    for path in stack.layout.credentials_dir.glob("*.env"):
        for key, value in stack.roles.read(path.stem).items():  # type: ignore[arg-type]
            if SECRET_KEYS.search(key):
                found.add(value)
            elif key == "CQRS_PG_DSN" and urlsplit(value).password:
                found.add(str(urlsplit(value).password))
    return {secret for secret in found if len(secret) >= 8}


def _files(root: Path) -> list[Path]:
    """Every file under `root` but the services' data (Kafka's log segments, PostgreSQL's and
    Elasticsearch's files: the data at rest, docs/security.md)."""
    return [path for path in root.rglob("*") if path.is_file()
            and "data" not in path.relative_to(root).parts]


def _is_log(path: Path) -> bool:
    return path.suffix == ".log" or "logs" in path.parts


def test_the_demo_passes_on_secure_services_and_leaks_no_secret(
        secure_stack: SecureStack) -> None:
    env = secure_stack.env(CQRS_TOPIC_PREFIX="secure-demo.", CQRS_PARTITIONS="3",
                           COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "cqrs", "demo"], env=env, capture_output=True,
                          text=True, timeout=420, check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "all 25 steps gave the expected answer" in report, report
    for step in ("create user Alice Smith", 'search "alice"', "user statistics",
                 "the process manager cancels Charlie's open order", "forget Bob"):
        assert f"ok   {step}" in report, report

    printed = subprocess.run([sys.executable, "-m", "cqrs", "services", "env"], env=env,
                             capture_output=True, text=True, check=True).stdout
    status = subprocess.run([sys.executable, "-m", "cqrs", "services", "status"], env=env,
                            capture_output=True, text=True, check=False)
    assert status.returncode == 0, status.stdout + status.stderr
    secrets = _secrets(secure_stack)
    assert len(secrets) >= 8, "expected the passwords and keys of every role"
    outputs = {"cqrs demo": report, "cqrs services env": printed,
               "cqrs services status": status.stdout + status.stderr}
    files = _files(secure_stack.layout.state_dir)
    outputs |= {str(path): path.read_text(errors="replace") for path in files if _is_log(path)}
    assert any("pipeline" in name for name in outputs), sorted(outputs)  # the workers' logs
    assert any("kafka" in name for name in outputs), sorted(outputs)  # a service's log
    leaks = [(name, secret[:3] + "...") for name, text in outputs.items() for secret in secrets
             if secret in text]
    assert not leaks, f"secrets found in: {leaks}"
    # Where a secret is kept, only its owner may read it.
    exposed = [str(path) for path in files
               if path.stat().st_mode & 0o077
               and any(secret in path.read_text(errors="replace") for secret in secrets)]
    assert not exposed, f"secrets in files others may read: {exposed}"


def test_a_search_user_is_rotated_and_the_old_one_retired_from_the_command_line(
        secure_stack: SecureStack) -> None:
    env = secure_stack.env(CQRS_TOPIC_PREFIX="secure-demo.")
    old = secure_stack.roles.read("projector-search")["CQRS_ES_USERNAME"]
    rotated = subprocess.run([sys.executable, "-m", "cqrs", "access", "rotate-search-user",
                              "projector-search"], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert rotated.stdout.strip() == old
    new = secure_stack.roles.read("projector-search")["CQRS_ES_USERNAME"]
    assert new != old
    assert new.startswith("search-projector")
    retired = subprocess.run([sys.executable, "-m", "cqrs", "access", "retire-search-user", old],
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert retired.returncode == 0, retired.stdout + retired.stderr
    again = subprocess.run([sys.executable, "-m", "cqrs", "access", "retire-search-user", new],
                           env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 1
    assert "still names" in again.stderr
