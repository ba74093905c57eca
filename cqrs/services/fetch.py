"""Fetching artifacts from Maven Central with Maven, into a cache outside the clone."""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from cqrs.services.errors import FetchFailed
from cqrs.services.prereqs import find_maven

Say = Callable[[str], None]

# Maven's batch-mode transfer line: "Downloaded from central: <url>/<file> (<size> at <rate>)".
_DOWNLOADED = re.compile(r"Downloaded from \S+: \S*/(?P<file>[^/\s]+) \((?P<size>[^)]*)\)")

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.cqrs</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

_DEPENDENCY = """    <dependency>
      <groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>
    </dependency>"""


def _run_maven(args: list[str], cwd: Path, say: Say) -> None:
    """Run Maven in batch mode, passing its download lines (what, how big, how fast) on."""
    command = [find_maven(), "-B", *args]
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-30:], line]
            downloaded = _DOWNLOADED.search(line)
            if downloaded and not downloaded.group("file").endswith(".pom"):
                say(f"    downloaded {downloaded.group('file')} ({downloaded.group('size')})")
        if proc.wait() != 0:
            raise FetchFailed("Maven failed:\n" + "\n".join(tail))


def fetch_classpath(name: str, artifacts: list[str], target: Path, say: Say) -> Path:
    """Resolve ``artifacts`` with their runtime dependencies into ``target`` (once for the same
    artifacts: the marker names them, so a changed list is fetched again)."""
    marker = target / ".complete"
    wanted = "\n".join(artifacts) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return target
    say(f"  fetching {', '.join(artifacts)} and dependencies with Maven (about 45 MiB)")
    work = target.with_suffix(".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dependencies = "\n".join(
        _DEPENDENCY.format(group=g, artifact=a, version=v)
        for g, a, v in (coordinate.split(":") for coordinate in artifacts)
    )
    (work / "pom.xml").write_text(_POM.format(name=name, dependencies=dependencies))
    _run_maven(
        [
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={work / 'libs'}",
        ],
        work,
        say,
    )
    shutil.rmtree(target, ignore_errors=True)
    (work / "libs").rename(target)
    shutil.rmtree(work, ignore_errors=True)
    jars = list(target.glob("*.jar"))
    size_mib = sum(j.stat().st_size for j in jars) / 2**20
    say(f"  {len(jars)} jars, {size_mib:.0f} MiB, cached in {target}")
    marker.write_text(wanted)
    return target


def fetch_zip(coordinate: str, target: Path, say: Say) -> Path:
    """Fetch a zip artifact (``group:artifact:version:zip``) and unpack it into ``target`` (once).

    Returns the single top-level directory of the archive.
    """
    marker = target / ".complete"
    if marker.exists():
        return next(p for p in target.iterdir() if p.is_dir())
    group, artifact, version, packaging = coordinate.split(":")
    say(f"  fetching {coordinate} with Maven (about 95 MiB)")
    work = target.with_suffix(".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    _run_maven(
        [
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact={group}:{artifact}:{version}:{packaging}",
            f"-DoutputDirectory={work}",
        ],
        work,
        say,
    )
    archive = work / f"{artifact}-{version}.{packaging}"
    say(f"  unpacking {archive.name} ({archive.stat().st_size / 2**20:.0f} MiB)")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            extracted = Path(zipped.extract(member, target))
            mode = member.external_attr >> 16
            if mode:
                extracted.chmod(mode)
    shutil.rmtree(work, ignore_errors=True)
    marker.touch()
    return next(p for p in target.iterdir() if p.is_dir())
