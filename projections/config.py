"""What the read side is configured with: narrow, immutable configs built by the entry point.

The composition root (`cqrs.bootstrap`) reads the settings once and hands these down; nothing in
`projections` reads the environment or knows where the settings come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from topics import Catalogue, KafkaConnection


@dataclass(frozen=True)
class PostgresConfig:
    """The read models' database (credentials inside the DSN, never shown in a repr)."""

    dsn: str = field(repr=False)


@dataclass(frozen=True)
class SearchConfig:
    """The Elasticsearch cluster: its URL and, optionally, an API key (never shown)."""

    url: str = "http://127.0.0.1:9200"
    api_key: str | None = field(default=None, repr=False)


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
