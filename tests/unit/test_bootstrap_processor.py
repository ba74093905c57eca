"""`cqrs processor` builds its processor through the bootstrap, so a test injects the in-memory
broker there, as it injects the other fakes."""

from __future__ import annotations

from typer.testing import CliRunner

from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from cqrs.cli.processor import FENCED_EXIT
from cqrs.config import Config
from cqrs.settings import Settings
from pipeline.processor import Processor, ProcessorConfig
from pipeline.processor.memory import Fault, MemoryBroker

SETTINGS = Settings(topic_prefix="boot.", partitions=2)


def test_the_processor_config_comes_from_the_settings() -> None:
    config = Config.from_settings(SETTINGS).processor("slot-1", batch_size=7, batch_ms=3)
    assert config.transactional_id == "boot.processor-slot-1"
    assert (config.topics.commands, config.topics.commands_dlq) == (
        "boot.commands", "boot.commands.dlq")
    assert (config.batch_size, config.batch_ms) == (7, 3)
    assert config.kafka["bootstrap.servers"] == SETTINGS.kafka_bootstrap


def test_cqrs_processor_runs_the_injected_processor() -> None:
    built: list[tuple[ProcessorConfig, MemoryBroker]] = []

    def in_memory(config: ProcessorConfig) -> Processor:
        broker = MemoryBroker.for_config(config, SETTINGS.partitions)
        broker.inject(Fault("fenced", "begin", times=None))
        broker.append(config.topics.commands, 0, b"k", b"not json")
        built.append((config, broker))
        return broker.processor(config)

    result = CliRunner().invoke(
        app, ["processor", "--instance-id", "t1", "--metrics-port", "0"],
        obj=Bootstrap(SETTINGS, processor=in_memory),
    )
    assert result.exit_code == FENCED_EXIT, result.output
    [(config, broker)] = built
    assert config.transactional_id == "boot.processor-t1"
    assert broker.fired  # the loop ran on the in-memory broker, and its producer was fenced
