"""The command line through the whole pipeline: `cqrs send --wait`, `get user`, `search`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from tests.e2e.conftest import ROOT, Pipeline


def cqrs(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cqrs", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **pipeline.env}, timeout=60, check=False)


def test_send_get_and_search_from_the_command_line(pipeline: Pipeline) -> None:
    tag = uuid.uuid4().hex[:6]
    user_id = f"cli-{tag}"
    sent = cqrs(pipeline, "send", "CreateUser", "-a", user_id, f"email=yara.{tag}@example.com",
                "name=Yara Quill", "--wait", "30", "-o", "json")
    assert sent.returncode == 0, (sent.stderr, pipeline.log_tail())
    result = json.loads(sent.stdout)
    assert (result["status"], result["version"]) == ("accepted", 1)

    got = cqrs(pipeline, "get", "user", user_id, "--min-version", "1", "--wait", "30", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["name"] == "Yara Quill"
    table = cqrs(pipeline, "get", "user", user_id)
    assert "Yara Quill" in table.stdout

    deadline = time.monotonic() + 20
    while True:
        found = cqrs(pipeline, "search", f"yara {tag}", "--json")
        assert found.returncode == 0, found.stderr
        ids = [hit["id"] for hit in json.loads(found.stdout)["hits"]]
        if user_id in ids or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert user_id in ids

    missing = cqrs(pipeline, "get", "user", f"nobody-{tag}")
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    rejected = cqrs(pipeline, "send", "CreateUser", "-a", user_id, "email=y@example.com",
                    "name=Yara Again", "--wait", "30")
    assert rejected.returncode == 1
    assert "user.already_exists" in rejected.stdout
