"""Index names under the topic prefix, the mapping, and idempotent alias/index creation.

Queries and the live projector address the alias `<prefix>users`; it points at one concrete
index `<prefix>users-v<N>`. A rebuild creates `users-v<N+1>`, fills it, then moves the alias in one
`_aliases` call (atomic), so readers never see an empty or half-built index.

The refresh interval (`SearchConfig.refresh_interval`) is an index setting, not part of the
mapping version: it is written when an index is created and put again on the live index at a
projector's start when it differs, so changing it needs a restart, not a rebuild.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from projections.config import DEFAULT_REFRESH_INTERVAL, refresh_interval_ms
from projections.search.errors import IndexConflict

MAPPING_VERSION = 1
"""`_meta.mapping_version` of `mapping.json`; a live index with another is an `IndexConflict`."""

_ILLEGAL = re.compile(r"[^a-z0-9._-]")


def sanitise_prefix(topic_prefix: str) -> str:
    """A topic prefix made legal at the head of an index name: lowercase, `[a-z0-9._-]` only,
    no leading `-`, `_`, `+` or `.` (a leading dot would make the index hidden)."""
    return _ILLEGAL.sub("_", topic_prefix.lower()).lstrip("-_+.")


@dataclass(frozen=True)
class IndexNames:
    """The alias and versioned index names of the users search index under one prefix."""

    alias: str

    @classmethod
    def for_prefix(cls, topic_prefix: str) -> IndexNames:
        return cls(alias=f"{sanitise_prefix(topic_prefix)}users")

    def versioned(self, generation: int) -> str:
        """The concrete index of generation `generation` (1 for the first build)."""
        return f"{self.alias}-v{generation}"

    @property
    def forgotten(self) -> str:
        """The forgotten users' markers, shared by every generation (docs/erasure.md)."""
        return f"{self.alias}-forgotten"

    @property
    def pattern(self) -> str:
        """Every generation of this index (for clean-up)."""
        return f"{self.alias}-v*"


def load_mapping() -> dict[str, Any]:
    """The settings and mappings body shipped as `projections/search/mapping.json`."""
    text = resources.files("projections.search").joinpath("mapping.json").read_text("utf-8")
    return cast(dict[str, Any], json.loads(text))


def index_settings(refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> dict[str, Any]:
    """The shipped settings (`mapping.json`) with `refresh_interval` in place of its own."""
    refresh_interval_ms(refresh_interval)  # ValueError for a value Elasticsearch would refuse
    settings = cast(dict[str, Any], load_mapping()["settings"])
    return {**settings, "index": {**settings["index"], "refresh_interval": refresh_interval}}


async def ensure_index(client: AsyncElasticsearch, names: IndexNames,
                       refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> str:
    """Make the alias exist, pointing at an index with this mapping and `refresh_interval`;
    returns that index's name.

    Idempotent and safe to race: creating an index that exists and adding an alias that exists
    are both no-ops. An existing alias is kept wherever it points (a rebuild may have moved it),
    as long as that index has this mapping version; its refresh interval is set to
    `refresh_interval` if it differs.
    """
    current = await alias_target(client, names)
    if current is None:
        if await client.indices.exists(index=names.alias):
            raise IndexConflict(f"{names.alias!r} is a concrete index, not an alias")
        current = names.versioned(1)
        await create_index(client, current, refresh_interval)
        await client.indices.update_aliases(
            actions=[{"add": {"index": current, "alias": names.alias}}]
        )
    await check_mapping_version(client, current)
    await apply_refresh_interval(client, current, refresh_interval)
    return current


async def create_index(client: AsyncElasticsearch, index: str,
                       refresh_interval: str = DEFAULT_REFRESH_INTERVAL) -> None:
    """Create `index` with the shipped mapping and `refresh_interval`, unless it exists already
    (then its refresh interval is set to `refresh_interval` if it differs)."""
    body = load_mapping()
    try:
        await client.indices.create(
            index=index, settings=index_settings(refresh_interval), mappings=body["mappings"]
        )
    except BadRequestError as error:
        if error.error != "resource_already_exists_exception":
            raise
        await apply_refresh_interval(client, index, refresh_interval)


async def apply_refresh_interval(client: AsyncElasticsearch, index: str,
                                 refresh_interval: str) -> bool:
    """Put `refresh_interval` on `index` unless it already has that interval (compared in
    milliseconds: `1s` and `1000ms` are the same); whether it was changed."""
    response = await client.indices.get_settings(
        index=index, name="index.refresh_interval", include_defaults=True)
    if _same_interval(_refresh_interval_of(response.body[index]), refresh_interval):
        return False
    await client.indices.put_settings(
        index=index, settings={"index": {"refresh_interval": refresh_interval}})
    return True


async def alias_target(client: AsyncElasticsearch, names: IndexNames) -> str | None:
    """The concrete index the alias points at, `None` if there is no alias."""
    try:
        response = await client.indices.get_alias(name=names.alias)
    except NotFoundError:
        return None
    targets: list[str] = sorted(response.body)
    if len(targets) != 1:
        raise IndexConflict(f"alias {names.alias!r} points at {targets}, expected one index")
    return targets[0]


async def check_mapping_version(client: AsyncElasticsearch, index: str) -> None:
    """Raise `IndexConflict` if `index` was built from another mapping version."""
    response = await client.indices.get_mapping(index=index)
    meta = response.body[index]["mappings"].get("_meta", {})
    if meta.get("mapping_version") != MAPPING_VERSION:
        raise IndexConflict(
            f"{index!r} has mapping version {meta.get('mapping_version')!r}, "
            f"this code writes version {MAPPING_VERSION}"
        )


async def swap_alias(client: AsyncElasticsearch, names: IndexNames, new_index: str) -> None:
    """Point the alias at `new_index` and away from every other index, in one atomic call."""
    await client.indices.update_aliases(
        actions=[
            {"remove": {"index": names.pattern, "alias": names.alias, "must_exist": False}},
            {"add": {"index": new_index, "alias": names.alias}},
        ]
    )


async def drop_indices(client: AsyncElasticsearch, names: IndexNames) -> None:
    """Delete every generation of the index (and so the alias), and the forgotten users'
    markers. For tests and teardown.

    Deleted by name: the cluster refuses wildcard deletes (`action.destructive_requires_name`).
    """
    response = await client.indices.get(index=names.pattern, allow_no_indices=True)
    indices = sorted(response.body)
    if await client.indices.exists(index=names.forgotten):
        indices.append(names.forgotten)
    if indices:
        await client.indices.delete(index=",".join(indices), ignore_unavailable=True)


def _refresh_interval_of(index_body: dict[str, Any]) -> str:
    """`index.refresh_interval` from a `_settings` answer for one index: set, else default."""
    for part in ("settings", "defaults"):
        found = (index_body.get(part) or {}).get("index", {}).get("refresh_interval")
        if found is not None:
            return str(found)
    return DEFAULT_REFRESH_INTERVAL


def _same_interval(found: str, wanted: str) -> bool:
    try:
        return refresh_interval_ms(found) == refresh_interval_ms(wanted)
    except ValueError:  # a form this code does not write (say `1.5s`): put ours
        return False
