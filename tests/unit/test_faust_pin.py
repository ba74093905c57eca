"""faust-streaming is pinned exactly: `projections.runtime` overrides and calls private Faust
methods, which any other version may have changed without notice."""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

PINNED = "0.15.3"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

OVERRIDDEN = {
    # Faust class (module, name) and method: where projections.runtime depends on it.
    ("faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread", "_create_worker_consumer"):
        "faust_app.ReadCommittedConsumerThread: switches the consumer to read_committed",
    ("faust.transport.drivers.aiokafka", "Consumer", "_new_consumer_thread"):
        "faust_app.CheckpointConsumer: builds the read_committed consumer thread",
    ("faust.transport.drivers.aiokafka", "Consumer", "_drain_messages"):
        "drain.drain_fetches: its contract, handing each fetch to the agent whole",
    ("faust.transport.drivers.aiokafka", "Consumer", "_wait_next_records"):
        "drain.drain_fetches: called for each fetch (flow, active partitions, the fetcher)",
    ("faust.transport.drivers.aiokafka", "Consumer", "_reset_state"):
        "faust_app.CheckpointConsumer: also resets the applied positions",
    ("faust.transport.drivers.aiokafka", "Consumer", "_filter_tps_with_pending_acks"):
        "faust_app.CheckpointConsumer: Faust's commit asks it which partitions to commit",
    ("faust.transport.drivers.aiokafka", "Consumer", "_new_offset"):
        "faust_app.CheckpointConsumer: Faust's commit asks it each partition's offset",
    ("faust.transport.drivers.aiokafka", "Consumer", "on_partitions_revoked"):
        "faust_app.CheckpointConsumer: commits, then forgets, the revoked partitions' positions",
    ("faust", "App", "_new_transport"):
        "faust_app.ProjectorApp: the transport with the checkpoint consumer",
    ("faust.transport.drivers.aiokafka", "Consumer", "seek_to_committed"):
        "faust_app.CheckpointConsumer: seeks to the store's checkpoints after a rebalance",
    ("faust", "App", "on_init_dependencies"):
        "faust_app.ProjectorApp: leaves Faust's Monitor sensor out",
}


def _recheck() -> str:
    lines = [f"  {module}.{cls}.{method} -> projections.runtime.{where}"
             for (module, cls, method), where in OVERRIDDEN.items()]
    return "re-check each of these against the new version's source:\n" + "\n".join(lines)


def test_the_installed_faust_is_the_pinned_version() -> None:
    installed = importlib.metadata.version("faust-streaming")
    assert installed == PINNED, (
        f"faust-streaming {installed} is installed, projections.runtime was written against "
        f"{PINNED}; {_recheck()}\nthen move PINNED here and the pin in pyproject.toml")


def test_pyproject_pins_the_same_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"faust-streaming=={PINNED}" in dependencies


@pytest.mark.parametrize(("module", "cls", "method"), list(OVERRIDDEN))
def test_every_overridden_method_still_exists(module: str, cls: str, method: str) -> None:
    owner = getattr(importlib.import_module(module), cls)
    assert callable(getattr(owner, method, None)), f"{module}.{cls}.{method} is gone; {_recheck()}"


MANAGERS_OVERRIDDEN = {
    # Where projections.managers.app depends on Faust's private behaviour (re-check on a move).
    ("faust.transport.drivers.aiokafka", "Consumer", "resume_partitions"):
        "ReadCommittedConsumer: holds stream partitions until the rebalance ended",
    ("faust.transport.drivers.aiokafka", "Consumer", "seek_to_committed"):
        "ReadCommittedConsumer: a stream partition without a committed offset from its start",
    ("faust.transport.drivers.aiokafka", "Consumer", "_new_consumer_thread"):
        "ReadCommittedConsumer: the projectors' read_committed consumer thread",
    ("faust.tables.recovery", "Recovery", "on_recovery_completed"):
        "ReadCommittedConsumer: its order (resume, seek, clear the queues, on_rebalance_end)",
    ("faust", "App", "on_rebalance_end"):
        "ManagerApp: releases the held stream partitions",
    ("faust", "App", "_new_transport"):
        "ManagerApp: the transport with the managers' consumer",
    ("faust.tables.base", "Collection", "_on_changelog_sent"):
        "make_manager_app.table: a changelog write that failed stops the process",
}


@pytest.mark.parametrize(("module", "cls", "method"), list(MANAGERS_OVERRIDDEN))
def test_every_method_the_managers_rely_on_still_exists(module: str, cls: str,
                                                        method: str) -> None:
    owner = getattr(importlib.import_module(module), cls)
    assert callable(getattr(owner, method, None)), (
        f"{module}.{cls}.{method} is gone; re-check projections.managers.app."
        f"{MANAGERS_OVERRIDDEN[(module, cls, method)]}")
