"""JSON Schema export: `python -m topics.schemas` writes docs/schemas/<Name>.json per message."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from topics._envelopes import CommandEnvelope, CommandResult, EventEnvelope, Snapshot
from topics._registry import COMMANDS, EVENTS

SCHEMA_DIRECTORY = Path(__file__).resolve().parent.parent / "docs" / "schemas"
ENVELOPES: tuple[type[BaseModel], ...] = (CommandEnvelope, EventEnvelope, CommandResult, Snapshot)


def _event_schema(model: type[BaseModel], schema_version: int) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["x-schema-version"] = schema_version
    return schema


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, for every envelope, command and event (events carry their
    `x-schema-version`)."""
    documents: dict[str, dict[str, Any]] = {}
    for envelope in ENVELOPES:
        documents[f"{envelope.__name__}.json"] = envelope.model_json_schema()
    for name, command in COMMANDS.items():
        documents[f"{name}.json"] = command.model.model_json_schema()
    for name, event in EVENTS.items():
        documents[f"{name}.json"] = _event_schema(event.model, event.model.schema_version)
    return documents


def render_schema(schema: Mapping[str, Any]) -> str:
    """Stable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIRECTORY) -> list[Path]:
    """Write every schema into `directory` and remove stale `*.json` files; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = schema_documents()
    for stale in directory.glob("*.json"):
        if stale.name not in documents:
            stale.unlink()
    written = []
    for name, schema in sorted(documents.items()):
        path = directory / name
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point: an optional target directory as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    write_schemas(Path(args[0]) if args else SCHEMA_DIRECTORY)
    return 0

