"""Prometheus: Debian's server, scraping the pipeline's processes, with the repo's rule files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from cqrs.services.base import Launch, Say, Service
from cqrs.services.errors import PrerequisiteMissing, StartFailed
from cqrs.services.layout import Layout
from cqrs.services.prereqs import find_prometheus


def _duration(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def scrape_config(layout: Layout, home: Path) -> dict[str, object]:
    """The generated prometheus.yml (JSON is YAML): one job per pipeline process, its targets
    read from ``targets/<job>/*.json`` (file_sd: Prometheus re-reads them when they change), and
    the rule files copied under ``rules/``."""
    interval = _duration(layout.scrape_interval_s)
    timeout = _duration(max(0.5, layout.scrape_interval_s * 0.8))
    jobs: list[dict[str, object]] = [
        {"job_name": job,
         "file_sd_configs": [{"files": [str(home / "targets" / job / "*.json")]}]}
        for job in sorted(layout.metrics_targets)
    ]
    jobs.append({"job_name": "prometheus",
                 "static_configs": [{"targets": [f"{layout.host}:{layout.prometheus_port}"]}]})
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": timeout,
                   "evaluation_interval": interval},
        "rule_files": [str(home / "rules" / "*.yml")],
        "scrape_configs": jobs,
    }


class Prometheus(Service):
    name = "prometheus"
    start_timeout = 60.0

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    def prepare(self, say: Say) -> Launch:
        binary, promtool = find_prometheus()
        for sub in ("data", "rules", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        self._write_rules()
        self._write_targets()
        self.config_file.write_text(json.dumps(scrape_config(self.layout, self.home), indent=2))
        if promtool is not None:
            self._check(promtool)
        else:
            say("  promtool not found: the config and rules are checked by Prometheus at start")
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.home / 'data'}",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address={self.layout.host}:{self.layout.prometheus_port}",
            # POST /-/reload re-reads the config and rules (loopback only).
            "--web.enable-lifecycle",
        ]
        return Launch(
            command=command,
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(self.home)},
            cwd=self.home,
            user=self.user,
            ports=(self.layout.prometheus_port,),
        )

    def _write_rules(self) -> None:
        """Copy the rule files (the repo's deploy/prometheus by default) at every start: the
        service user reads its own copies, and a changed file takes effect on restart."""
        rules = self.home / "rules"
        for stale in rules.glob("*.yml"):
            stale.unlink()
        for source in self.layout.prometheus_rules:
            if not source.is_file():
                raise PrerequisiteMissing(
                    f"prometheus: rule file {source} not found; run from the project's clone or "
                    f"name the files with CQRS_SERVICES_PROMETHEUS_RULES (separated by "
                    f"{os.pathsep!r})")
            shutil.copyfile(source, rules / f"{source.stem}.yml")

    def _write_targets(self) -> None:
        """``targets/<job>/default.json`` is generated at every start; other files there are
        yours (another processor's port, say) and are kept."""
        for job, targets in self.layout.metrics_targets.items():
            directory = self.home / "targets" / job
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "default.json").write_text(
                json.dumps([{"targets": list(targets), "labels": {}}], indent=2) + "\n")

    def _check(self, promtool: str) -> None:
        result = subprocess.run([promtool, "check", "config", str(self.config_file)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StartFailed(f"prometheus: `promtool check config` refused "
                              f"{self.config_file}:\n{result.stdout}{result.stderr}")

    def ready(self) -> bool:
        url = f"{self.layout.prometheus_url}/-/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def describe(self) -> str:
        return f"prometheus on {self.layout.prometheus_url} (config {self.config_file})"
