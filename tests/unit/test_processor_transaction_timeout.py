"""`CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS` reaches the processor's producer as both its
`transaction.timeout.ms` and its records' `message.timeout.ms`; unset, the processor's default;
`cqrs services env` sets it to 30 s for a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from cqrs.config import Config
from cqrs.services import Layout
from cqrs.settings import Settings
from pipeline.processor import ProcessorConfig


def producer_timeouts(settings: Settings) -> tuple[object, object]:
    producer = Config.from_settings(settings).processor("p", 100, 100).producer()
    return producer["transaction.timeout.ms"], producer["message.timeout.ms"]


def test_the_setting_sizes_the_transaction_and_the_record_timeouts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS", "30000")
    assert producer_timeouts(Settings(pg_dsn="postgresql://x@h/db")) == (30000, 30000)


def test_unset_it_is_the_processors_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS", raising=False)
    default = ProcessorConfig.transaction_timeout_ms
    assert producer_timeouts(Settings(pg_dsn="postgresql://x@h/db")) == (default, default)


def test_below_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1000"):
        Settings(pg_dsn="postgresql://x@h/db", processor_transaction_timeout_ms=500)


def test_services_env_sizes_it_for_a_cluster_only(tmp_path: Path) -> None:
    def printed(nodes: str) -> dict[str, str | None]:
        return Layout.from_env({"CQRS_SERVICES_STATE_DIR": str(tmp_path),
                                "CQRS_SERVICES_KAFKA_NODES": nodes}).client_env()

    assert printed("3")["CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS"] == "30000"
    assert "CQRS_PROCESSOR_TRANSACTION_TIMEOUT_MS" not in printed("1")


def test_the_restore_timeout_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_PROCESSOR_RESTORE_TIMEOUT_S", "240")
    config = Config.from_settings(Settings(pg_dsn="postgresql://x@h/db"))
    assert config.processor("p", 100, 100).restore_timeout_s == 240
    monkeypatch.delenv("CQRS_PROCESSOR_RESTORE_TIMEOUT_S")
    config = Config.from_settings(Settings(pg_dsn="postgresql://x@h/db"))
    assert config.processor("p", 100, 100).restore_timeout_s == ProcessorConfig.restore_timeout_s
    with pytest.raises(ValueError, match="greater than 0"):
        Settings(pg_dsn="postgresql://x@h/db", processor_restore_timeout_s=0)
