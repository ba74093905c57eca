"""What the read side is configured with: narrow, immutable configs built by the entry point.

The composition root (`cqrs.bootstrap`) reads the settings once and hands these down; nothing in
`projections` reads the environment or knows where the settings come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from projections.postgres.schema import check_schema, schema_dsn, schema_for_prefix
from topics import Catalogue, KafkaConnection


@dataclass(frozen=True)
class PostgresConfig:
    """The read models' database (credentials inside the DSN, never shown in a repr), and the
    live schema in it that belongs to one deployment: `schema`, claimed for topic prefix `owner`
    (`projections.postgres.schema`). `schema=None` keeps the DSN's own `search_path` and claims
    nothing: for a database of its own (tests, the bench's baselines)."""

    dsn: str = field(repr=False)
    schema: str | None = None
    owner: str | None = None

    def __post_init__(self) -> None:
        if self.schema is not None:
            check_schema(self.schema)  # SchemaNameError: not usable as a live schema

    @classmethod
    def for_prefix(cls, dsn: str, prefix: str, schema: str | None = None) -> PostgresConfig:
        """The database `dsn`, in the schema of topic prefix `prefix` (or `schema`, explicit),
        owned by `prefix`."""
        return cls(dsn, schema if schema is not None else schema_for_prefix(prefix), prefix)

    @property
    def live_dsn(self) -> str:
        """`dsn` with the live schema as its whole `search_path` (every reader and writer of
        the live model connects with it)."""
        return self.dsn if self.schema is None else schema_dsn(self.dsn, self.schema)


DEFAULT_REFRESH_INTERVAL = "1s"
"""The users index's `index.refresh_interval` unless configured (`CQRS_SEARCH_REFRESH_INTERVAL`)."""


@dataclass(frozen=True)
class SearchConfig:
    """The Elasticsearch cluster: its URL and how to authenticate (an API key, or a user and
    password: the admin's; secrets never shown), the CA its HTTPS certificate is verified with
    (None: the system's); and the users index's refresh interval (an Elasticsearch time value
    such as `1s`, `500ms`, or `-1` for no periodic refresh): how long an indexed document may
    stay invisible to search, traded against the cost of each refresh (a new segment, more
    merging). See docs/search.md."""

    url: str = "http://127.0.0.1:9200"
    api_key: str | None = field(default=None, repr=False)
    refresh_interval: str = DEFAULT_REFRESH_INTERVAL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None

    def __post_init__(self) -> None:
        refresh_interval_ms(self.refresh_interval)  # refuse a value Elasticsearch would refuse

    @property
    def refresh_ms(self) -> int | None:
        """The refresh interval in milliseconds; `None` for `-1` (no periodic refresh)."""
        return refresh_interval_ms(self.refresh_interval)


_TIME_VALUE = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def refresh_interval_ms(text: str) -> int | None:
    """An `index.refresh_interval` value in milliseconds (`None` for `-1`, never refreshed on a
    timer); `ValueError` for anything else than `-1` or a positive whole amount with a unit
    (`ms`, `s`, `m`, `h`, `d`), such as `500ms` or `1s`."""
    if text == "-1":
        return None
    found = _TIME_VALUE.match(text)
    if found is None or int(found[1]) == 0:
        raise ValueError(f"refresh interval {text!r}: expected -1 or a positive time value "
                         "such as 500ms, 1s or 30s")
    return int(found[1]) * _UNIT_MS[found[2]]


@dataclass(frozen=True)
class ProjectionsConfig:
    """Everything a projector's composition root, or an operations tool, is built from."""

    kafka: KafkaConnection
    catalogue: Catalogue
    postgres: PostgresConfig
    search: SearchConfig

    @property
    def prefix(self) -> str:
        """The topic prefix (the namespace of groups, topics and index names)."""
        return self.catalogue.prefix
