"""`cqrs rebuild`: input checks (exit 2) and the list/drop commands over a fake target."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cqrs.bootstrap import Bootstrap
from cqrs.cli import app
from cqrs.cli import rebuild as rebuild_cli
from cqrs.config import Config
from projections.postgres.fake import FakeStore
from projections.rebuild.target import Target
from tests.unit.test_rebuild import FakeTarget

runner = CliRunner()


@pytest.mark.parametrize("args", [
    ["nosuch"],
    ["postgres", "--from-beginning", "--from-offset", "0:1"],
    ["postgres", "--from-offset", "zero"],
    ["postgres", "--until", "yesterday"],
])
def test_bad_input_exits_2(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rebuild_cli, "EventSource", None)  # never reached
    result = runner.invoke(app, ["rebuild", *args])
    assert result.exit_code == 2, result.output


def test_list_and_drop_old_go_through_the_target() -> None:
    target = FakeTarget(stores={"retired_1": FakeStore(), "pit_2": FakeStore()})

    def fake_target(projection: str, config: Config) -> Target:
        return target

    boot = Bootstrap(target=fake_target)
    listed = runner.invoke(app, ["rebuild", "postgres", "--list"], obj=boot)
    assert listed.exit_code == 0, listed.output
    assert "retired_1" in listed.output
    assert "pit_2" in listed.output
    dropped = runner.invoke(app, ["rebuild", "postgres", "--drop-old"], obj=boot)
    assert dropped.exit_code == 0, dropped.output
    assert target.dropped == ["retired_1"]
