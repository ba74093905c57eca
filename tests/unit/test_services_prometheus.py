"""The native Prometheus: settings, the generated config and targets, the missing-binary fix."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cqrs.services import prereqs
from cqrs.services.errors import PrerequisiteMissing
from cqrs.services.layout import PROMETHEUS_RULES, Layout
from cqrs.services.prometheus import Prometheus, scrape_config
from cqrs.services.runner import Runner
from cqrs.settings import Settings


def test_prometheus_settings_come_from_the_environment(tmp_path: Path) -> None:
    rules = tmp_path / "a.yml", tmp_path / "b.yml"
    layout = Layout.from_env({
        "CQRS_SERVICES_STATE_DIR": str(tmp_path),
        "CQRS_SERVICES_PROMETHEUS_PORT": "19090",
        "CQRS_SERVICES_PROMETHEUS_SCRAPE_INTERVAL": "1",
        "CQRS_SERVICES_PROMETHEUS_RULES": ":".join(map(str, rules)),
        "CQRS_PROCESSOR_METRICS_PORT": "29401",  # the settings' (below), not the layout's
    }, metrics_ports=Settings(processor_metrics_port=19401).metrics_ports())
    assert layout.prometheus_url == "http://127.0.0.1:19090"
    assert layout.scrape_interval_s == 1.0
    assert layout.prometheus_rules == rules
    assert layout.metrics_targets == {
        "cqrs-processor": ("127.0.0.1:19401",),
        "cqrs-projector-postgres": ("127.0.0.1:9402",),
        "cqrs-projector-search": ("127.0.0.1:9403",),
        "cqrs-gateway": ("127.0.0.1:8000",),
    }


def test_the_defaults_are_the_specs_ports_and_the_repos_rules() -> None:
    layout = Layout.from_env({})
    assert layout.prometheus_port == 9090
    assert layout.scrape_interval_s == 5.0
    assert layout.prometheus_rules == PROMETHEUS_RULES
    assert all(path.is_file() for path in PROMETHEUS_RULES)
    assert layout == Layout(state_dir=layout.state_dir, cache_dir=layout.cache_dir)


def test_with_metrics_adds_prometheus_to_the_default_services(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path)
    assert [s.name for s in Runner(layout).services] == ["kafka", "elasticsearch", "postgres"]
    assert [s.name for s in Runner(layout, with_metrics=True).services][-1] == "prometheus"
    assert Runner(layout).running_metrics_services() == []


def test_the_config_scrapes_each_job_from_its_file_sd_directory(tmp_path: Path) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path, scrape_interval_s=0.5,
                    metrics_targets={"cqrs-processor": ("127.0.0.1:1", "127.0.0.1:2")})
    config = scrape_config(layout, tmp_path / "prometheus")
    assert config["global"] == {"scrape_interval": "500ms", "scrape_timeout": "500ms",
                                "evaluation_interval": "500ms"}
    assert config["rule_files"] == [str(tmp_path / "prometheus/rules/*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}  # type: ignore[attr-defined]
    assert jobs["cqrs-processor"]["file_sd_configs"] == [
        {"files": [str(tmp_path / "prometheus/targets/cqrs-processor/*.json")]}]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed")
def test_prepare_writes_a_config_promtool_accepts_and_keeps_extra_targets(
    tmp_path: Path,
) -> None:
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path, prometheus_port=19999)
    service = Prometheus(layout, None)
    extra = service.home / "targets/cqrs-processor/second.json"
    extra.parent.mkdir(parents=True)
    extra.write_text('[{"targets": ["127.0.0.1:9411"]}]')
    said: list[str] = []
    launch = service.prepare(said.append)
    assert "--web.listen-address=127.0.0.1:19999" in launch.command
    assert launch.ports == (19999,)
    assert sorted(p.name for p in (service.home / "rules").iterdir()) == ["alerts.yml",
                                                                           "rules.yml"]
    default = json.loads((service.home / "targets/cqrs-processor/default.json").read_text())
    assert default == [{"targets": ["127.0.0.1:9401"], "labels": {}}]
    assert extra.exists()
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "config", str(service.config_file)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_a_missing_rule_file_names_the_setting(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CQRS_SERVICES_PROMETHEUS_BIN", "/bin/true")
    layout = Layout(state_dir=tmp_path, cache_dir=tmp_path,
                    prometheus_rules=(tmp_path / "missing.yml",))
    with pytest.raises(PrerequisiteMissing, match="CQRS_SERVICES_PROMETHEUS_RULES"):
        Prometheus(layout, None).prepare(lambda _: None)


def test_missing_prometheus_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CQRS_SERVICES_PROMETHEUS_BIN", raising=False)
    with pytest.raises(PrerequisiteMissing, match=r"apt-get install .*prometheus"):
        prereqs.find_prometheus()
