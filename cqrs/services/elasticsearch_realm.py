"""The secure node's file realm: one user per role that reads or writes the search index.

Why users of the file realm and not API keys: API keys (like native users and roles) live in the
`.security` index, whose settings name analysis filters of the `analysis-common` module, which
the integration-test distribution the project runs does not ship (creating a key answers
`Unknown filter type [pattern_capture]`). The file realm and file roles need no index: the node
reads `users`, `users_roles` and `roles.yml` in its config directory, and reloads them when they
change (every 5 s). A deployment on a full distribution can give API keys instead
(`CQRS_ES_API_KEY`); the clients take either.

| role file          | user             | its file role          |
|--------------------|------------------|------------------------|
| admin              | elastic          | superuser (built in)   |
| projector-search   | search-projector | cqrs-search-projector  |
| client             | search-query     | cqrs-search-query      |

The roles' index privileges are per topic prefix, written by `cqrs access apply`
(`cqrs.access.elasticsearch`); until then they hold none.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cqrs.services.credentials import Role, RoleFiles, write_secret_file

PBKDF2_ITERATIONS = 10_000
"""Elasticsearch's own default cost for `{PBKDF2}` hashes."""


def pbkdf2_hash(password: str) -> str:
    """`password` hashed as the file realm reads a `{PBKDF2}` hash: PBKDF2-HMAC-SHA512, a
    32-byte salt, a 256-bit key, `{PBKDF2}<cost>$<salt>$<key>` in base64."""
    salt = secrets.token_bytes(32)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS, 32)
    return (f"{{PBKDF2}}{PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(key).decode()}")


def pbkdf2_verify(password: str, stored: str) -> bool:
    """Whether `stored` (a `pbkdf2_hash`) is the hash of `password`."""
    try:
        cost, salt, key = stored.removeprefix("{PBKDF2}").split("$")
        found = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                    int(cost), len(base64.b64decode(key)))
    except ValueError:
        return False
    return secrets.compare_digest(found, base64.b64decode(key))


SEARCH_USERS: dict[Role, tuple[str, str]] = {
    "projector-search": ("search-projector", "cqrs-search-projector"),
    "client": ("search-query", "cqrs-search-query"),
}
"""Role (its credentials file) → its Elasticsearch user and that user's file role."""


def secret_name(user: str) -> str:
    """`RoleFiles.secret` name of `user`'s password."""
    return f"elasticsearch-{user}"


def write_users(config: Path, roles: RoleFiles) -> None:
    """`users` (a hash of each user's generated password, rewritten only when a password no
    longer matches it) and `users_roles` in `config`; mode 0600, for the node's user."""
    users = config / "users"
    held = _read_users(users)
    lines = []
    for user, _ in SEARCH_USERS.values():
        password = roles.secret(secret_name(user))
        hashed = held.get(user, "")
        if not pbkdf2_verify(password, hashed):
            hashed = pbkdf2_hash(password)
        lines.append(f"{user}:{hashed}")
    _write_for_node(users, "\n".join(lines) + "\n", config)
    mapping = "".join(f"{role}:{user}\n" for user, role in SEARCH_USERS.values())
    _write_for_node(config / "users_roles", mapping, config)


def role_credentials(roles: RoleFiles) -> dict[Role, dict[str, str]]:
    """What each search role's file holds: its user and password."""
    return {role: {"CQRS_ES_USERNAME": user,
                   "CQRS_ES_PASSWORD": roles.secret(secret_name(user))}
            for role, (user, _) in SEARCH_USERS.items()}


def _read_users(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _write_for_node(path: Path, text: str, config: Path) -> None:
    """Replace `path` at once (a reload never reads half a file), owned like `config` (the
    node's user) and readable by it only."""
    staged = path.with_name(f".{path.name}.new")
    write_secret_file(staged, text)
    owner = config.stat()
    if os.geteuid() == 0:
        os.chown(staged, owner.st_uid, owner.st_gid)
    staged.replace(path)


def write_roles_file(config: Path, text: str) -> None:
    """`roles.yml` in `config`, replaced at once (the node reloads it within seconds)."""
    _write_for_node(config / "roles.yml", text, config)
