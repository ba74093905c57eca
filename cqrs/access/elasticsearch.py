"""Elasticsearch: each search role's index privileges, widened to a topic prefix's indices.

`cqrs services up --secure` makes the users (`cqrs.services.elasticsearch_realm`, which says why
file-realm users rather than API keys); `grant_elasticsearch` gives their roles the prefix's
indices:

- `cqrs-search-projector` (user search-projector, role file projector-search): reads, writes,
  creates and re-aliases the prefix's users indices (the `<p>users` alias, the generations
  `<p>users-v<N>[-pit]` and their `-state` indices, `<p>users-forgotten`). No `delete_index`
  (a rebuild's `--drop-old` runs as the admin), no cluster privilege, no other index.
- `cqrs-search-query` (user search-query, role file client): `read` on the `<p>users` alias only.

The granted prefixes are kept beside the node's roles file (`PREFIXES_RECORD`); a grant adds its
prefix and rewrites `roles.yml` from the whole set, so each role covers every prefix granted so
far and a repeated grant writes the same file. The node reloads the file within seconds; the
grant returns once each user holds its new privileges (`_has_privileges`).

A role's password is rotated without stopping anything in two steps (a file-realm user has one
password, so a rotation is a new user of the same role): `rotate_elasticsearch_user` adds one
and names it in the role's file, the old one still working; once every process of the role has
restarted (each reads its file at start), `retire_elasticsearch_user` removes the old one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elasticsearch import AuthenticationException

from cqrs.config import Config
from cqrs.services.credentials import Role, RoleFiles, write_secret_file
from cqrs.services.elasticsearch_realm import (
    SEARCH_USERS,
    add_user,
    credentials_of,
    remove_user,
    user_of,
    write_roles_file,
)
from cqrs.settings import Settings
from projections.config import SearchConfig
from projections.search.client import make_client
from projections.search.index import IndexNames
from projections.search.tracking import state_index_for

Say = Callable[[str], None]

PREFIXES_RECORD = "cqrs-search-prefixes.json"
"""In the node's config directory: the topic prefixes granted so far (a JSON list)."""
APPLY_TIMEOUT_S = 30.0
"""How long the node may take to reload `roles.yml` (it looks every 5 s)."""

PROJECTOR_PRIVILEGES = (
    "read", "write", "create_index", "view_index_metadata",
    "maintenance",  # refresh: the state index is refreshed before it is read
    "indices:admin/aliases",  # the alias on the first generation; a rebuild's swap
    "indices:admin/settings/update",  # refresh_interval; the state index's gc_deletes
)
QUERY_PRIVILEGES = ("read",)


class AccessError(Exception):
    """Grants cannot be made here, or the node did not apply them."""


def _regex_literal(text: str) -> str:
    """`text` matched literally in a Lucene regular expression (an index name written
    `/.../`): every character but letters and digits escaped."""
    return "".join(ch if ch.isalnum() else "\\" + ch for ch in text)


def projector_names(prefix: str) -> list[str]:
    """The search projector's names under `prefix`; its generations as one `/regex/`."""
    names = IndexNames.for_prefix(prefix)
    generations = f"/{_regex_literal(names.alias + '-v')}[0-9]+(\\-pit)?(\\-state)?/"
    return [names.alias, names.forgotten, generations]


def query_names(prefix: str) -> list[str]:
    return [IndexNames.for_prefix(prefix).alias]


def projector_samples(prefix: str) -> list[str]:
    """Concrete names the projector's privileges must cover once `prefix` is granted."""
    names = IndexNames.for_prefix(prefix)
    return [names.alias, names.forgotten, names.versioned(1), state_index_for(names.versioned(1))]


@dataclass(frozen=True)
class SearchRole:
    """One search role: the role file of its user, and its index privileges per prefix."""

    role: Role
    names: Callable[[str], list[str]]
    privileges: tuple[str, ...]
    samples: Callable[[str], list[str]]

    @property
    def user(self) -> str:
        return SEARCH_USERS[self.role][0]

    @property
    def role_name(self) -> str:
        return SEARCH_USERS[self.role][1]

    def descriptor(self, prefixes: Iterable[str]) -> dict[str, Any]:
        """Its role descriptor for every prefix in `prefixes`: names sorted and once each, so
        the same set of prefixes gives the same descriptor whatever the order of grants."""
        chosen = sorted(set(prefixes))
        index_names = sorted({name for prefix in chosen for name in self.names(prefix)})
        indices = ([{"names": index_names, "privileges": list(self.privileges)}]
                   if index_names else [])
        return {"cluster": [], "indices": indices, "metadata": {"cqrs_prefixes": chosen}}


PROJECTOR = SearchRole("projector-search", projector_names, PROJECTOR_PRIVILEGES,
                       projector_samples)
QUERY = SearchRole("client", query_names, QUERY_PRIVILEGES, query_names)
SEARCH_ROLES = (PROJECTOR, QUERY)


def merged_prefixes(granted: Iterable[str], new: str) -> list[str]:
    """The prefixes granted so far and `new`: sorted, once each."""
    return sorted({*granted, new})


def roles_yaml(prefixes: Iterable[str]) -> str:
    """`roles.yml` for `prefixes`: each role a block whose values are JSON (YAML's flow
    style), so that no name needs YAML quoting rules of its own."""
    lines = ["# Written by `cqrs access apply` (cqrs.access.elasticsearch); edits are lost."]
    for each in SEARCH_ROLES:
        descriptor = each.descriptor(prefixes)
        lines += [f"{each.role_name}:", "  cluster: []"]
        if descriptor["indices"]:
            lines.append("  indices:")
            for entry in descriptor["indices"]:
                lines.append(f"    - names: {json.dumps(entry['names'])}")
                lines.append(f"      privileges: {json.dumps(entry['privileges'])}")
        else:
            lines.append("  indices: []")
        lines.append(f"  metadata: {json.dumps(descriptor['metadata'])}")
    return "\n".join(lines) + "\n"


def node_config(roles: RoleFiles) -> Path:
    """The local secure node's config directory: the credentials directory is
    `<state>/credentials`, the node's home `<state>/elasticsearch` (`Layout`)."""
    return roles.directory.parent / "elasticsearch" / "config"


def granted_prefixes(config: Path) -> list[str]:
    try:
        found = json.loads((config / PREFIXES_RECORD).read_text())
    except FileNotFoundError:
        return []
    return [str(prefix) for prefix in found]


def _checked_config(roles: RoleFiles) -> Path:
    """The local secure node's config directory, or `AccessError`."""
    config = node_config(roles)
    if not (config / "elasticsearch.yml").exists():
        raise AccessError(f"no secure Elasticsearch node's config in {config}: start it with "
                          "`cqrs services up --secure elasticsearch`")
    return config


def grant_elasticsearch(settings: Settings, roles: RoleFiles | None, say: Say) -> None:
    """Give the search roles `settings.topic_prefix`'s indices (on top of every prefix granted
    before) and wait until the node applies it, checked as each role's user with the admin's
    URL and CA. Idempotent. Raises `AccessError` (never with a secret in it)."""
    if roles is None:
        raise AccessError("no credentials directory (CQRS_CREDENTIALS_DIR): grants apply to "
                          "secure services (`cqrs services up --secure`)")
    config = _checked_config(roles)
    prefixes = merged_prefixes(granted_prefixes(config), settings.topic_prefix)
    write_secret_file(config / PREFIXES_RECORD, json.dumps(prefixes) + "\n")
    write_roles_file(config, roles_yaml(prefixes))
    say(f"  roles {', '.join(each.role_name for each in SEARCH_ROLES)} cover prefixes "
        f"{', '.join(prefixes)} ({config / 'roles.yml'})")
    for each in SEARCH_ROLES:
        held = roles.read(each.role)
        search = SearchConfig(settings.es_url, username=held.get("CQRS_ES_USERNAME"),
                              password=held.get("CQRS_ES_PASSWORD"),
                              ca_certs=settings.es_ca_certs)
        admin = Config.from_settings(settings).search
        asyncio.run(_wait_applied(admin, search, each, settings.topic_prefix))
        say(f"  user {each.user}: {', '.join(each.privileges)} on the indices of prefix "
            f"{settings.topic_prefix}")


async def _wait_applied(admin: SearchConfig, search: SearchConfig, each: SearchRole,
                        prefix: str) -> None:
    """Until `each`'s user holds its privileges on `prefix`'s names. The node reloads
    `roles.yml` on a timer, and keeps what it resolved for a role before the file named it (an
    empty role) until the role's cache is cleared: the admin clears it at each try."""
    request = {"names": each.samples(prefix), "privileges": list(each.privileges)}
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    async with make_client(search) as client, make_client(admin) as clearer:
        while True:
            await clearer.security.clear_cached_roles(name=each.role_name)
            response = await client.security.has_privileges(index=[request])
            if response["has_all_requested"]:
                return
            if time.monotonic() > deadline:
                missing = {index: [name for name, held in privileges.items() if not held]
                           for index, privileges in response["index"].items()}
                raise AccessError(f"Elasticsearch did not apply {each.role_name}'s privileges "
                                  f"within {APPLY_TIMEOUT_S:.0f}s; still missing: {missing} "
                                  "(see the node's log for roles.yml errors)")
            await asyncio.sleep(0.5)


def rotate_elasticsearch_user(settings: Settings, roles: RoleFiles, role: Role, say: Say) -> str:
    """A new user and password for search role `role`, live on the node when this returns and
    written to the role's file; the old user keeps working. Returns the old user's name, to
    retire once every process of `role` has restarted."""
    config = _checked_config(roles)
    if role not in SEARCH_USERS:
        raise AccessError(f"role {role!r} has no Elasticsearch user; "
                          f"those that do: {', '.join(SEARCH_USERS)}")
    old = user_of(roles, role)
    new = add_user(config, roles, role)
    asyncio.run(_wait_authenticates(settings, credentials_of(roles, new), True))
    roles.set(role, credentials_of(roles, new))
    say(f"  user {new} for role {role} in {roles.path(role)}; restart the role's processes, "
        f"then retire {old}")
    return old


def retire_elasticsearch_user(settings: Settings, roles: RoleFiles, user: str, say: Say) -> None:
    """`user` removed from the node (refused once this returns) and its password forgotten;
    refused while a role's file still names it."""
    config = _checked_config(roles)
    if not any(user == first or user.startswith(f"{first}-")
               for first, _ in SEARCH_USERS.values()):
        raise AccessError(f"{user!r} is not a search role's user")
    named = [role for role in SEARCH_USERS if user_of(roles, role) == user]
    if named:
        raise AccessError(f"{roles.path(named[0])} still names {user!r}: rotate first")
    credentials = credentials_of(roles, user)
    remove_user(config, roles, user)
    asyncio.run(_wait_authenticates(settings, credentials, False))
    say(f"  user {user} retired")


async def _wait_authenticates(settings: Settings, credentials: dict[str, str],
                              wanted: bool) -> None:
    """Until the node (re)loads its users file: `credentials` authenticate (`wanted`) or not."""
    search = SearchConfig(settings.es_url, username=credentials["CQRS_ES_USERNAME"],
                          password=credentials["CQRS_ES_PASSWORD"], ca_certs=settings.es_ca_certs)
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    async with make_client(search) as client:
        while True:
            try:
                await client.security.authenticate()
                authenticates = True
            except AuthenticationException:
                authenticates = False
            if authenticates == wanted:
                return
            if time.monotonic() > deadline:
                user = credentials["CQRS_ES_USERNAME"]
                raise AccessError(f"Elasticsearch did not reload its users file within "
                                  f"{APPLY_TIMEOUT_S:.0f}s (user {user})")
            await asyncio.sleep(0.5)
