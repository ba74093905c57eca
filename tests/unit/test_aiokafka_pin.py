"""aiokafka is pinned exactly: `projections.runtime.lenient` copies two of its record-reading
methods and replaces two names of its fetcher module, which any other version may have changed."""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

PINNED = "0.14.0"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

DEPENDED_ON = {
    # aiokafka (module, name, attribute or None): where projections.runtime.lenient depends on it.
    ("aiokafka.consumer.fetcher", "PartitionRecords", "_unpack_records"):
        "LenientPartitionRecords._unpack_records: a copy of 0.14.0's, re-reading a batch",
    ("aiokafka.consumer.fetcher", "PartitionRecords", "_consumer_record"):
        "LenientPartitionRecords: called per record, as 0.14.0's loop does",
    ("aiokafka.consumer.fetcher", "MemoryRecords", None):
        "read_header_names_leniently: replaced by KeptMemoryRecords in the fetcher's module",
    ("aiokafka.record.default_records", "_DefaultRecordBatchPy", "_read_msg"):
        "LenientBatch._read_msg: a copy of 0.14.0's, header names with surrogateescape",
    ("aiokafka.record.default_records", "_DefaultRecordPy", None):
        "LenientBatch._read_msg: the record it returns",
}


def _recheck() -> str:
    lines = [f"  {module}.{name}{'.' + attribute if attribute else ''} -> {where}"
             for (module, name, attribute), where in DEPENDED_ON.items()]
    return ("re-check each of these against the new version's source (projections.runtime."
            "lenient):\n" + "\n".join(lines))


def test_the_installed_aiokafka_is_the_pinned_version() -> None:
    installed = importlib.metadata.version("aiokafka")
    assert installed == PINNED, (
        f"aiokafka {installed} is installed, projections.runtime.lenient was written against "
        f"{PINNED}; {_recheck()}\nthen move PINNED here and the pin in pyproject.toml")


def test_pyproject_pins_the_same_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"aiokafka=={PINNED}" in dependencies


@pytest.mark.parametrize(("module", "name", "attribute"), list(DEPENDED_ON))
def test_everything_depended_on_still_exists(module: str, name: str,
                                             attribute: str | None) -> None:
    owner = getattr(importlib.import_module(module), name, None)
    assert owner is not None, f"{module}.{name} is gone; {_recheck()}"
    if attribute is not None:
        assert callable(getattr(owner, attribute, None)), (
            f"{module}.{name}.{attribute} is gone; {_recheck()}")
