"""Finding the tools the services need (Java, Maven, PostgreSQL), with errors that name the fix."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from cqrs.services.errors import PrerequisiteMissing

JVM_ROOT = Path("/usr/lib/jvm")


def java_major(java_home: Path) -> int | None:
    """The feature version of the JDK/JRE at ``java_home``, or None if there is none."""
    release = java_home / "release"
    if release.is_file():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text())
        if match:
            return int(match.group(1))
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', out.stderr)
    return int(match.group(1)) if match else None


def _candidates(env_var: str) -> list[Path]:
    found: list[Path] = []
    if os.environ.get(env_var):
        found.append(Path(os.environ[env_var]))
    if JVM_ROOT.is_dir():
        found.extend(sorted(p for p in JVM_ROOT.iterdir() if p.is_dir() and not p.is_symlink()))
    java = shutil.which("java")
    if java:
        found.append(Path(os.path.realpath(java)).parent.parent)
    return found


def find_java(min_major: int, env_var: str, purpose: str, max_major: int | None = None) -> Path:
    """A Java home of at least ``min_major`` (preferring the one named by ``env_var``)."""
    seen: list[str] = []
    for home in _candidates(env_var):
        major = java_major(home)
        if major is None:
            continue
        seen.append(f"{home} (Java {major})")
        if major >= min_major and (max_major is None or major <= max_major):
            return home
    wanted = f"Java {min_major}+" if max_major is None else f"Java {min_major}-{max_major}"
    raise PrerequisiteMissing(
        f"{purpose} needs {wanted}; found {', '.join(seen) or 'no Java at all'}. "
        f"Install one (Debian: apt-get install openjdk-{min_major}-jre-headless) "
        f"or point {env_var} at a JDK of that version."
    )


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "Maven is needed to fetch Kafka and Elasticsearch from Maven Central. "
            "Install it (Debian: apt-get install maven) and run `cqrs services up` again."
        )
    return mvn


def find_postgres_bin() -> Path:
    """The directory holding initdb, pg_ctl and postgres (the newest Debian cluster version)."""
    if os.environ.get("CQRS_SERVICES_PG_BIN"):
        return Path(os.environ["CQRS_SERVICES_PG_BIN"])
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if debian:
        return debian[0].parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(os.path.realpath(pg_ctl)).parent
    raise PrerequisiteMissing(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. Install them "
        "(Debian: apt-get install postgresql) or set CQRS_SERVICES_PG_BIN to their directory."
    )


def find_prometheus() -> tuple[str, str | None]:
    """The ``prometheus`` binary and, when installed beside it, ``promtool``."""
    binary = os.environ.get("CQRS_SERVICES_PROMETHEUS_BIN") or shutil.which("prometheus")
    if binary is None:
        raise PrerequisiteMissing(
            "Prometheus is needed for `--with-metrics`. Install it (Debian: apt-get install "
            "--no-install-recommends prometheus; then `systemctl disable --now prometheus` if "
            "the package started its own on port 9090) or set CQRS_SERVICES_PROMETHEUS_BIN."
        )
    promtool = Path(binary).with_name("promtool")
    return binary, str(promtool) if promtool.exists() else shutil.which("promtool")
