"""`cqrs smoke`: prove each service works end to end (topic round trip, a row, a document)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import psycopg
import typer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from rich.console import Console

from cqrs.cli.boot import bootstrap
from cqrs.config import Config
from topics import apply

console = Console(soft_wrap=True)


def _topics(config: Config) -> str:
    report = apply(AdminClient(config.kafka.client_config()), config.catalogue)
    if report.drift:
        raise RuntimeError("; ".join(str(d) for d in report.drift))
    return f"{len(report.created)} created, {len(report.unchanged)} already in place"


def _kafka_round_trip(config: Config) -> str:
    kafka = config.kafka.client_config()
    admin = AdminClient(kafka)
    topic = f"{config.prefix}smoke-{uuid.uuid4().hex[:8]}"
    # Replicated as the catalogue's topics are, so on a cluster the round trip needs its quorum.
    catalogue = config.catalogue
    replicated = {"min.insync.replicas": catalogue.commands.configs["min.insync.replicas"]}
    admin.create_topics([NewTopic(topic, num_partitions=1, config=replicated,
                                  replication_factor=catalogue.replication_factor)])[topic].result()
    try:
        marker = uuid.uuid4().hex.encode()
        producer = Producer({**kafka, "enable.idempotence": True})
        producer.produce(topic, key=b"smoke", value=marker)
        if producer.flush(10) != 0:
            raise RuntimeError("the broker did not acknowledge the message")
        consumer = Consumer({**kafka, "group.id": topic, "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is not None and message.error() is None and message.value() == marker:
                    return f"produced and consumed one message on {topic}"
        finally:
            consumer.close()
        raise RuntimeError("the message did not come back within 30 s")
    finally:
        admin.delete_topics([topic])


def _postgres_row(config: Config) -> str:
    with psycopg.connect(config.postgres.dsn, connect_timeout=10) as conn:
        conn.execute("CREATE TEMPORARY TABLE smoke (id text PRIMARY KEY, n int)")
        conn.execute("INSERT INTO smoke VALUES (%s, %s)", ("row", 42))
        row = conn.execute("SELECT n FROM smoke WHERE id = 'row'").fetchone()
        version = conn.execute("SHOW server_version").fetchone()
    if row != (42,):
        raise RuntimeError(f"read back {row!r} instead of (42,)")
    return f"wrote and read a row (PostgreSQL {version[0] if version else '?'})"


def _elasticsearch_document(config: Config) -> str:
    index = f"{config.prefix.strip('.').lower()}-smoke-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=config.search.url, timeout=30) as es:
        try:
            es.put(f"/{index}/_doc/1", params={"refresh": "wait_for"},
                   json={"name": "smoke"}).raise_for_status()
            found = es.get(f"/{index}/_doc/1").raise_for_status().json()
            server = es.get("/_cat/nodes", params={"h": "version"}).text.strip()
        finally:
            es.delete(f"/{index}")
    if found.get("_source") != {"name": "smoke"}:
        raise RuntimeError(f"read back {found!r}")
    return f"indexed and read a document (Elasticsearch {server})"


def smoke(ctx: typer.Context) -> None:
    """Check the services end to end: topics apply, a Kafka round trip, a row, a document."""
    config = bootstrap(ctx).config
    steps: list[tuple[str, Callable[[Config], str]]] = [
        ("topics apply", _topics),
        ("kafka", _kafka_round_trip),
        ("postgresql", _postgres_row),
        ("elasticsearch", _elasticsearch_document),
    ]
    failed = 0
    for name, step in steps:
        try:
            console.print(f"[green]ok[/green]   {name}: {step(config)}", highlight=False)
        except Exception as error:
            failed += 1
            console.print(f"[red]FAIL[/red] {name}: {type(error).__name__}: {error}",
                          highlight=False)
    if failed:
        console.print("is everything up? `cqrs services status` names each service's log")
        raise typer.Exit(1)
    console.print("smoke test passed")
