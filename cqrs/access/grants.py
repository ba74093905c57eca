"""Every service's grants for one topic prefix, in the order they depend on each other."""

from __future__ import annotations

from collections.abc import Callable

from cqrs.access.elasticsearch import grant_elasticsearch
from cqrs.access.kafka import grant_kafka
from cqrs.access.postgres import grant_postgres
from cqrs.services.credentials import RoleFiles
from cqrs.settings import Settings

Say = Callable[[str], None]
Grant = Callable[[Settings, RoleFiles, Say], None]

GRANTS: dict[str, Grant] = {
    "kafka": grant_kafka,
    "postgres": grant_postgres,
    "elasticsearch": grant_elasticsearch,
}
"""Service → its grant: Kafka's ACLs; PostgreSQL's migrations (as the owner) and privileges;
Elasticsearch's search roles widened to the prefix's indices (docs/security.md)."""


class NotSecure(Exception):
    """Grants need the secure services' credentials (the admin's), and there are none."""


class GrantFailed(Exception):
    """A service refused or failed a grant; the message names the service and the cause."""


def grant_all(settings: Settings, say: Say, services: tuple[str, ...] = tuple(GRANTS)) -> None:
    """Grant every role its rights on `settings.topic_prefix`'s resources, as the admin whose
    settings these are. Idempotent."""
    if settings.credentials_dir is None:
        raise NotSecure(
            "no credentials directory (CQRS_CREDENTIALS_DIR): access applies to secure services; "
            "start them with `cqrs services up --secure`, then `eval \"$(cqrs services env)\"`")
    roles = RoleFiles(settings.credentials_dir)
    for name in services:
        say(f"{name}: granting each role its rights on prefix {settings.topic_prefix!r}")
        try:
            GRANTS[name](settings, roles, say)
        except Exception as error:  # any adapter's error: said with the service it came from
            raise GrantFailed(f"{name}: {type(error).__name__}: {error}") from error
