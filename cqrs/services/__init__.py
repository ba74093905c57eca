"""Native services: Kafka, Elasticsearch and PostgreSQL provisioned from package registries."""

from cqrs.services.layout import ELASTICSEARCH_VERSION, KAFKA_VERSION, POSTGRES_MAJOR, Layout
from cqrs.services.runner import Runner, ServiceError

__all__ = [
    "ELASTICSEARCH_VERSION",
    "KAFKA_VERSION",
    "POSTGRES_MAJOR",
    "Layout",
    "Runner",
    "ServiceError",
]
