"""Elasticsearch: one node of the integration-test zip from Maven Central, as a non-root user."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request

from cqrs.services.base import Launch, Say, Service
from cqrs.services.fetch import fetch_zip
from cqrs.services.layout import (
    ELASTICSEARCH_ARTIFACT,
    ELASTICSEARCH_MIN_JAVA,
    ELASTICSEARCH_VERSION,
)
from cqrs.services.prereqs import find_java


class Elasticsearch(Service):
    name = "elasticsearch"
    start_timeout = 180.0

    def _settings(self) -> str:
        layout = self.layout
        return "\n".join(
            [
                "cluster.name: cqrs",
                "node.name: cqrs-1",
                "discovery.type: single-node",
                f"network.host: {layout.host}",
                f"http.port: {layout.elasticsearch_port}",
                "transport.port: 9300-9399",
                f"path.data: {self.home / 'data'}",
                f"path.logs: {self.home / 'logs'}",
                # Local use: no TLS, no users. Put security back on for anything shared.
                "xpack.security.enabled: false",
                # Developer machines and CI have little free disk; never go read-only on it.
                "cluster.routing.allocation.disk.threshold_enabled: false",
                "action.destructive_requires_name: true",
                "",
            ]
        )

    def prepare(self, say: Say) -> Launch:
        java_home = find_java(ELASTICSEARCH_MIN_JAVA, "ES_JAVA_HOME", "Elasticsearch")
        dist = fetch_zip(
            ELASTICSEARCH_ARTIFACT,
            self.layout.cache_dir / f"elasticsearch-{ELASTICSEARCH_VERSION}",
            say,
        )
        config = self.home / "config"
        if not (config / "jvm.options").exists():
            shutil.copytree(dist / "config", config, dirs_exist_ok=True)
        (config / "elasticsearch.yml").write_text(self._settings())
        heap = self.layout.heap_mb
        (config / "jvm.options.d").mkdir(exist_ok=True)
        (config / "jvm.options.d" / "heap.options").write_text(f"-Xms{heap}m\n-Xmx{heap}m\n")
        for sub in ("data", "logs", "tmp"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ES_JAVA_HOME": str(java_home),
            "ES_PATH_CONF": str(config),
            "ES_TMPDIR": str(self.home / "tmp"),
            "HOME": str(self.home),
        }
        command = [str(dist / "bin" / "elasticsearch")]
        ports = (self.layout.elasticsearch_port,)
        return Launch(command=command, env=env, cwd=self.home / "logs", user=self.user, ports=ports)

    def health(self) -> dict[str, object] | None:
        url = f"{self.layout.elasticsearch_url}/_cluster/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                body: dict[str, object] = json.load(response)
                return body
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def ready(self) -> bool:
        health = self.health()
        return health is not None and health.get("status") in ("yellow", "green")

    def describe(self) -> str:
        return f"elasticsearch {ELASTICSEARCH_VERSION} on {self.layout.elasticsearch_url}"
