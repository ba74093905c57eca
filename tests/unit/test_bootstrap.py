"""The composition root: settings read once, turned into the narrow configs, fakes injected."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cqrs import bootstrap as bootstrap_module
from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from cqrs.config import Config
from cqrs.settings import Settings
from topics import CLIENT_LOGGER, KafkaConnection

ROOT = Path(__file__).resolve().parents[2]
SECURE = Settings(kafka_bootstrap="k1:9093,k2:9093", kafka_security_protocol="SASL_SSL",
                  kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="projector",
                  kafka_sasl_password="s3cret", kafka_ssl_ca_location="/ca.pem",
                  pg_dsn="postgresql://u:pw@db/cqrs", es_url="https://es:9200", es_api_key="key",
                  topic_prefix="prod.", partitions=12, replication_factor=3)


def test_settings_become_the_narrow_configs() -> None:
    config = Config.from_settings(SECURE)
    assert config.kafka.client_config() == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "projector",
        "sasl.password": "s3cret", "ssl.ca.location": "/ca.pem",
        "logger": logging.getLogger(CLIENT_LOGGER)}
    assert (config.catalogue.events.name, config.catalogue.partitions) == ("prod.events", 12)
    assert config.postgres.dsn == "postgresql://u:pw@db/cqrs"
    assert (config.search.url, config.search.api_key) == ("https://es:9200", "key")
    projections = config.projections()
    assert (projections.kafka, projections.prefix) == (config.kafka, "prod.")
    bench = config.bench()
    assert (bench.partitions, bench.replication_factor) == (12, 3)


def test_plaintext_kafka_needs_only_the_bootstrap() -> None:
    assert KafkaConnection("b:9092").client_config() == {
        "bootstrap.servers": "b:9092", "security.protocol": "PLAINTEXT",
        "logger": logging.getLogger(CLIENT_LOGGER)}


def test_secrets_stay_out_of_reprs() -> None:
    config = Config.from_settings(SECURE)
    assert "s3cret" not in repr(config)
    assert "pw@" not in repr(config)
    assert "key" not in repr(config.search)


def test_settings_are_read_once_and_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Settings] = []

    class Counting(Settings):
        @classmethod
        def for_role(cls, role: object) -> Settings:
            reads.append(Settings(topic_prefix="once."))
            return reads[-1]

    monkeypatch.setattr(bootstrap_module, "Settings", Counting)
    boot = Bootstrap()
    assert reads == []
    assert boot.config.prefix == "once."
    assert boot.config is boot.config
    assert len(reads) == 1


def test_the_command_line_keeps_one_bootstrap_per_invocation() -> None:
    seen: list[Config] = []

    def fake_client(config: Config) -> object:
        seen.append(config)
        raise RuntimeError("stop here")

    boot = Bootstrap(Settings(topic_prefix="given."), command_client=fake_client)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["send", "CreateUser", "-a", "u1", "email=a@b.co",
                                      "name=A"], obj=boot)
    assert isinstance(result.exception, RuntimeError)
    assert [config.prefix for config in seen] == ["given."]


def test_package_data_patterns_match_files() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    for package, patterns in package_data.items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"{package}/{pattern} matches nothing"
