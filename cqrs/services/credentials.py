"""The secrets `cqrs services up --secure` makes, and the credentials file of each role.

A **role** is what one kind of process is allowed to do; each has one credentials file,
`<state>/credentials/<role>.env` (mode 0600), holding the `CQRS_*` settings of its secrets
(Kafka's SASL user and password, PostgreSQL's DSN, Elasticsearch's user and password). An
entry point reads the file of its own role (`cqrs.settings.Settings.for_role`), so a processor
never holds the query role's password, and `cqrs services env` prints where the files are, never
what is in them.

| role               | Kafka principal      | PostgreSQL role   | Elasticsearch user        |
|--------------------|----------------------|-------------------|---------------------------|
| admin              | admin (super user)   | cqrs (owner)      | elastic (super user)      |
| processor          | processor            | -                 | -                         |
| projector-postgres | projector-postgres   | cqrs_projector    | -                         |
| projector-search   | projector-search     | -                 | search-projector (write)  |
| managers           | managers             | -                 | -                         |
| client             | client               | cqrs_query (read) | search-query (read)       |

docs/security.md gives each principal's rights.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

Role = Literal["admin", "processor", "projector-postgres", "projector-search", "managers",
               "client"]
ROLES: tuple[Role, ...] = ("admin", "processor", "projector-postgres", "projector-search",
                           "managers", "client")


class CredentialsError(Exception):
    """A credentials file that must not be used (readable by others, unreadable)."""


def write_secret_file(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` with `mode` (0600: never readable by others, not even in
    between), atomically: a reader sees the old file or the new one, never a part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data.encode() if isinstance(data, str) else data)
        os.replace(staged, path)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise


def ensure_secret(path: Path) -> str:
    """The secret kept in `path`, generated on first use; the file is left mode 0600."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        secret = secrets.token_urlsafe(24)
        write_secret_file(path, secret + "\n")
    path.chmod(0o600)
    return secret


def check_private(path: Path) -> None:
    """Refuse a secrets file that others than its owner may read, or that is not there."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise CredentialsError(
            f"cannot read credentials file {path}: {error.strerror} (secure services write one "
            "per role at `cqrs services up --secure`; or set CQRS_CREDENTIALS_FILE)") from None
    if mode & 0o077:
        raise CredentialsError(
            f"credentials file {path} may be read by others (mode {mode & 0o777:04o}); "
            f"make it private with: chmod 600 {path}")


def _quoted(value: str) -> str:
    if "'" in value or "\n" in value:
        raise ValueError("a credential value must not hold a quote or a newline")
    return f"'{value}'"


class RoleFiles:
    """The credentials files of the roles, in `directory` (mode 0700)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, role: Role) -> Path:
        return self.directory / f"{role}.env"

    def secret(self, name: str) -> str:
        """A generated secret kept beside the role files (`<directory>/secrets/<name>`)."""
        self._ensure_dir()
        (self.directory / "secrets").mkdir(mode=0o700, exist_ok=True)
        return ensure_secret(self.directory / "secrets" / name)

    def read(self, role: Role) -> dict[str, str]:
        values: dict[str, str] = {}
        try:
            text = self.path(role).read_text()
        except FileNotFoundError:
            return values
        for line in text.splitlines():
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key] = value[1:-1] if value[:1] == value[-1:] == "'" else value
        return values

    def set(self, role: Role, values: Mapping[str, str]) -> None:
        """Put `values` (`CQRS_*` settings) in `role`'s file, keeping its other lines."""
        self._ensure_dir()
        merged = {**self.read(role), **values}
        lines = [f"# {role}: written by `cqrs services up --secure`; keep it private (0600)"]
        lines += [f"{key}={_quoted(value)}" for key, value in sorted(merged.items())]
        write_secret_file(self.path(role), "\n".join(lines) + "\n")

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
