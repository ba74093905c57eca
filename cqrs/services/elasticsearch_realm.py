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


def user_of(roles: RoleFiles, role: Role) -> str:
    """The user `role`'s file names (after a rotation, not the first one), else its first."""
    return roles.read(role).get("CQRS_ES_USERNAME") or SEARCH_USERS[role][0]


def write_users(config: Path, roles: RoleFiles) -> None:
    """Each search role's user (`user_of`) in `users`, with the hash of its password (rewritten
    only when the password no longer matches it), and in its role in `users_roles`; other users
    (one being rotated out) are kept. Mode 0600, for the node's user."""
    users, members = _read_realm(config)
    for role, (_, role_name) in SEARCH_USERS.items():
        user = user_of(roles, role)
        password = roles.secret(secret_name(user))
        if not pbkdf2_verify(password, users.get(user, "")):
            users[user] = pbkdf2_hash(password)
        members.setdefault(role_name, set()).add(user)
    _write_realm(config, users, members)


def add_user(config: Path, roles: RoleFiles, role: Role) -> str:
    """A new user of `role`'s file role, with a new password (kept as its secret), beside the
    ones there: the first step of a rotation. Its name: `<first user>-<random>`."""
    user = f"{SEARCH_USERS[role][0]}-{secrets.token_hex(3)}"
    users, members = _read_realm(config)
    users[user] = pbkdf2_hash(roles.secret(secret_name(user)))
    members.setdefault(SEARCH_USERS[role][1], set()).add(user)
    _write_realm(config, users, members)
    return user


def remove_user(config: Path, roles: RoleFiles, user: str) -> None:
    """`user` out of the realm, and its password forgotten: the last step of a rotation."""
    users, members = _read_realm(config)
    users.pop(user, None)
    _write_realm(config, users, {role: names - {user} for role, names in members.items()})
    (roles.directory / "secrets" / secret_name(user)).unlink(missing_ok=True)


def role_credentials(roles: RoleFiles) -> dict[Role, dict[str, str]]:
    """What each search role's file holds: its user and password."""
    return {role: credentials_of(roles, user_of(roles, role)) for role in SEARCH_USERS}


def credentials_of(roles: RoleFiles, user: str) -> dict[str, str]:
    return {"CQRS_ES_USERNAME": user, "CQRS_ES_PASSWORD": roles.secret(secret_name(user))}


def _read_realm(config: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """`users` (user → hash) and `users_roles` (role → users) of `config`."""
    users = dict(_entries(config / "users"))
    members = {role: {each for each in names.split(",") if each}
               for role, names in _entries(config / "users_roles")}
    return users, members


def _entries(path: Path) -> list[tuple[str, str]]:
    """The `key:value` lines of a realm file (none if it is not there)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    found = [line.partition(":") for line in text.splitlines()]
    return [(key, value) for key, colon, value in found if colon and not key.startswith("#")]


def _write_realm(config: Path, users: dict[str, str], members: dict[str, set[str]]) -> None:
    _write_for_node(config / "users",
                    "".join(f"{user}:{users[user]}\n" for user in sorted(users)), config)
    _write_for_node(config / "users_roles",
                    "".join(f"{role}:{','.join(sorted(names))}\n"
                            for role, names in sorted(members.items()) if names), config)


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
