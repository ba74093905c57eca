"""The committed JSON Schemas match the models."""

from pathlib import Path

from pipeline.schemas import DEFAULT_DIRECTORY, render, schema_documents, write


def test_committed_schemas_match_the_models() -> None:
    expected = {name: render(schema) for name, schema in schema_documents().items()}
    committed = {path.name: path.read_text("utf-8") for path in DEFAULT_DIRECTORY.glob("*.json")}
    assert committed == expected, "docs/schemas is stale: run python -m pipeline.schemas"


def test_write_is_stable_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "Gone.json").write_text("{}\n")
    first = {path.name: path.read_text() for path in write(tmp_path)}
    second = {path.name: path.read_text() for path in write(tmp_path)}
    assert first == second
    assert not (tmp_path / "Gone.json").exists()
    assert all(text.endswith("}\n") for text in first.values())
    assert {"CommandEnvelope.json", "CreateUser.json", "OrderCreated.json"} <= set(first)
