"""Elasticsearch: one node of the integration-test zip from Maven Central, as a non-root user.

Secure (`Layout.secure`): security on, HTTPS with a certificate of the local CA (copied into the
node's config directory, the key readable by the service user only), and the built-in superuser
`elastic` with a generated password, given to the node as its keystore's `bootstrap.password`
(written through the keystore tool's stdin, never on a command line): the built-in reserved user
needs no realm file, and a bootstrap password is the one way to set it without the `.security`
index. The search roles are users of the file realm (`elasticsearch_realm`, which says why not
API keys; they are off). Every `up` writes the users file from the secrets and waits until the
node accepts each user's password before each role's file gets its
`CQRS_ES_USERNAME`/`CQRS_ES_PASSWORD`: a secret file edited (or removed, hence new) changes that
user's password on the running node. The index privileges are granted per prefix by
`cqrs.access.elasticsearch`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from cqrs.services.base import Launch, Say, Service
from cqrs.services.credentials import RoleFiles, write_secret_file
from cqrs.services.elasticsearch_realm import (
    SEARCH_USERS,
    credentials_of,
    role_credentials,
    user_of,
    write_users,
)
from cqrs.services.errors import StartFailed
from cqrs.services.fetch import fetch_zip
from cqrs.services.layout import (
    ELASTICSEARCH_ARTIFACT,
    ELASTICSEARCH_MIN_JAVA,
    ELASTICSEARCH_VERSION,
)
from cqrs.services.prereqs import find_java
from cqrs.services.tls import LocalCA

ADMIN_USER = "elastic"
"""The built-in superuser the admin role authenticates as (basic auth): the rebuild, its
`--drop-old` and the services' health check run as it."""
ADMIN_SECRET = "elasticsearch-elastic"  # noqa: S105 - a file name, not a password
"""`RoleFiles.secret` name of its password."""
USERS_TIMEOUT_S = 30.0
"""How long the node may take to reload its users file (it looks every 5 s)."""
CERT_DIR = "certs"
"""Under the node's config directory: where its HTTPS certificate and key are copied."""


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
                *self._security_settings(),
                # Developer machines and CI have little free disk; never go read-only on it.
                "cluster.routing.allocation.disk.threshold_enabled: false",
                "action.destructive_requires_name: true",
                "",
            ]
        )

    def _security_settings(self) -> list[str]:
        if not self.layout.secure:
            # Local use: no TLS, no users (`cqrs services up --secure` for anything shared).
            return ["xpack.security.enabled: false"]
        return [
            "xpack.security.enabled: true",
            "xpack.security.http.ssl.enabled: true",
            f"xpack.security.http.ssl.certificate: {CERT_DIR}/elasticsearch.pem",
            f"xpack.security.http.ssl.key: {CERT_DIR}/elasticsearch.key",
            # One node on loopback: single-node discovery would only warn without it (the
            # bootstrap check is not enforced), but security on means TLS on every listener.
            "xpack.security.transport.ssl.enabled: true",
            "xpack.security.transport.ssl.verification_mode: full",
            f"xpack.security.transport.ssl.certificate: {CERT_DIR}/transport.pem",
            f"xpack.security.transport.ssl.key: {CERT_DIR}/transport.key",
            f"xpack.security.transport.ssl.certificate_authorities: {CERT_DIR}/ca.pem",
        ]

    @property
    def _roles(self) -> RoleFiles:
        return RoleFiles(self.layout.credentials_dir)

    def _secure_config(self, dist: Path, config: Path, env: dict[str, str], say: Say) -> None:
        """The certificate and key in `config`, and `elastic`'s bootstrap password in the
        keystore (through stdin; a second run replaces it with the same password)."""
        hosts = tuple(dict.fromkeys((self.layout.host, "127.0.0.1", "localhost")))
        ca = LocalCA(self.layout.tls_dir)
        certs = config / CERT_DIR
        certs.mkdir(mode=0o700, exist_ok=True)
        certs.chmod(0o700)
        # The transport certificate authenticates the node to itself as client and server.
        for name, issued in (("elasticsearch", ca.issue("elasticsearch", hosts)),
                             ("transport", ca.issue("elasticsearch-transport", hosts,
                                                    client=True))):
            write_secret_file(certs / f"{name}.pem", issued.cert.read_bytes(), 0o644)
            write_secret_file(certs / f"{name}.key", issued.key.read_bytes())
        write_secret_file(certs / "ca.pem", ca.cert.read_bytes(), 0o644)
        keystore = [str(dist / "bin" / "elasticsearch-keystore")]
        if self.user is not None:  # the tool keeps the keystore's owner: the node's user
            subprocess.run(["chown", "-R", f"{self.user}:{self.user}", str(config)], check=True)
        if not (config / "elasticsearch.keystore").exists():
            self._keystore([*keystore, "create"], env, None)
        write_users(config, self._roles)
        say(f"  the `{ADMIN_USER}` user's bootstrap password (keystore)")
        password = self._roles.secret(ADMIN_SECRET)
        self._keystore([*keystore, "add", "--stdin", "--force", "bootstrap.password"], env,
                       password)
        # It holds the bootstrap password: the node's user alone may read it (the tool leaves
        # it readable by the group).
        (config / "elasticsearch.keystore").chmod(0o600)

    def _keystore(self, command: list[str], env: dict[str, str], stdin: str | None) -> None:
        done = subprocess.run(command, env=env, input=stdin, capture_output=True, text=True,
                              check=False, timeout=120, user=self.user, group=self.user)
        if done.returncode != 0:
            # The tool's output names the problem; the password went to stdin, never here.
            raise StartFailed(f"elasticsearch-keystore {command[1]} failed "
                              f"({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def after_start(self, say: Say) -> None:
        if not self.layout.secure:
            return
        self._roles.set("admin", {"CQRS_ES_USERNAME": ADMIN_USER,
                                  "CQRS_ES_PASSWORD": self._roles.secret(ADMIN_SECRET)})
        # The users file from the secrets (a changed one rehashed), accepted before any role's
        # file names the password.
        write_users(self.home / "config", self._roles)
        for role in SEARCH_USERS:
            self._wait_authenticates(credentials_of(self._roles, user_of(self._roles, role)))
        for role, values in role_credentials(self._roles).items():
            self._roles.set(role, values)
        say(f"elasticsearch: users {ADMIN_USER} (admin), "
            f"{', '.join(user for user, _ in SEARCH_USERS.values())} in {self._roles.directory}")

    def _wait_authenticates(self, credentials: dict[str, str]) -> None:
        """Until the node accepts `credentials` (`_security/_authenticate` answers 200), or
        `StartFailed` after `USERS_TIMEOUT_S`."""
        user, password = credentials["CQRS_ES_USERNAME"], credentials["CQRS_ES_PASSWORD"]
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        context = ssl.create_default_context(cafile=str(self.layout.ca_file))
        deadline = time.monotonic() + USERS_TIMEOUT_S
        while True:
            request = urllib.request.Request(  # noqa: S310 - https on loopback
                f"{self.layout.elasticsearch_url}/_security/_authenticate",
                headers={"Authorization": f"Basic {token}"})
            try:
                with urllib.request.urlopen(request, timeout=5,  # noqa: S310 - loopback
                                            context=context):
                    return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise StartFailed(f"elasticsearch: user {user} not accepted within "
                                  f"{USERS_TIMEOUT_S:.0f}s of writing the users file "
                                  f"(see {self.layout.log_file(self.name)})")
            time.sleep(0.5)

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
        if self.layout.secure:
            self._secure_config(dist, config, env, say)
        command = [str(dist / "bin" / "elasticsearch")]
        ports = (self.layout.elasticsearch_port,)
        return Launch(command=command, env=env, cwd=self.home / "logs", user=self.user, ports=ports)

    def health(self) -> dict[str, object] | None:
        """`_cluster/health`, as the admin over HTTPS when secure; None while unreachable, or
        when this user cannot read the admin's password."""
        url = f"{self.layout.elasticsearch_url}/_cluster/health"
        request = urllib.request.Request(url)  # noqa: S310 - http(s) on loopback
        try:
            context = self._authenticate(request) if self.layout.secure else None
            with urllib.request.urlopen(request, timeout=2,  # noqa: S310 - loopback
                                        context=context) as response:
                body: dict[str, object] = json.load(response)
                return body
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def _authenticate(self, request: urllib.request.Request) -> ssl.SSLContext:
        """Basic auth as the admin on `request` (its password read, never made here); the
        context that verifies the node against the local CA."""
        password = (self._roles.directory / "secrets" / ADMIN_SECRET).read_text().strip()
        token = base64.b64encode(f"{ADMIN_USER}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        return ssl.create_default_context(cafile=str(self.layout.ca_file))

    def ready(self) -> bool:
        health = self.health()
        return health is not None and health.get("status") in ("yellow", "green")

    def describe(self) -> str:
        return f"elasticsearch {ELASTICSEARCH_VERSION} on {self.layout.elasticsearch_url}"
