"""The gateway's API keys: issued once, stored only as salted scrypt hashes in a keys file.

A key reads ``cqrs_<id>_<secret>``: ``id`` (12 hex digits) is not secret and finds the key's line,
``secret`` is 32 random bytes (``secrets.token_urlsafe``). The keys file holds one line per key::

    ci-deployer commands 3fa9c1d2e4b5 scrypt:16384:8:1:<salt, base64>:<hash, base64>

(``name scope id hash``; ``#`` starts a comment). A file that group or others may read or write
(``mode & 0o077``) is refused: the hashes are slow to attack, not impossible. Adding appends a
line (``O_APPEND``); revoking rewrites the file and renames it into place, so a reader (the
running gateway) sees the old file or the new one, never a half-written one.

Errors::

    KeysError
     ├── KeysFileError   the file cannot be read, is open to group/others, or is malformed
     └── KeyNameError    add: an invalid or taken name; revoke: no such name
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Scope = Literal["commands", "read"]
"""``commands``: may send commands and query; ``read``: may only query."""
SCOPES: tuple[Scope, ...] = get_args(Scope)
KEY_PREFIX = "cqrs"
ID_HEX_DIGITS = 12
SECRET_BYTES = 32
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LENGTH = 2**14, 8, 1, 32
"""About 40 ms and 16 MiB a hash: cheap once per key (verified keys are cached), dear a guess."""
HEADER = "# cqrs gateway API keys: name scope id hash (`cqrs gateway keys add|list|revoke`)\n"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
KEY = re.compile(rf"{KEY_PREFIX}_([0-9a-f]{{{ID_HEX_DIGITS}}})_[A-Za-z0-9_-]{{40,}}")


class KeysError(Exception):
    """A keys file or a key name the operation cannot use."""


class KeysFileError(KeysError):
    """The keys file cannot be read, is open to group or others, or has a malformed line."""


class KeyNameError(KeysError):
    """An invalid or taken name (add), or a name the file does not hold (revoke)."""


@dataclass(frozen=True)
class Key:
    """A key's line: who holds it, what it may do, and how to check one presented."""

    name: str
    scope: Scope
    key_id: str
    digest: str
    """``scrypt:N:r:p:salt:hash`` (salt and hash in base64)."""

    def line(self) -> str:
        return f"{self.name} {self.scope} {self.key_id} {self.digest}\n"

    def verify(self, presented: str) -> bool:
        """Whether `presented` is this key: scrypt with the stored salt and cost, compared in
        constant time (`hmac.compare_digest`)."""
        _, n, r, p, salt, expected = self.digest.split(":")
        computed = _scrypt(presented, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, base64.b64decode(expected))


def new_key(name: str, scope: Scope) -> tuple[str, Key]:
    """A fresh raw key (to show once, never to store) and its line (to store)."""
    if NAME.fullmatch(name) is None:
        raise KeyNameError(f"invalid key name {name!r}: 1-64 letters, digits, '.', '_', '@', '-'")
    if scope not in SCOPES:
        raise KeyNameError(f"invalid scope {scope!r}: one of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(ID_HEX_DIGITS // 2)
    raw = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    salt = secrets.token_bytes(16)
    hashed = _scrypt(raw, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    digest = ":".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                       base64.b64encode(salt).decode(), base64.b64encode(hashed).decode()])
    return raw, Key(name, scope, key_id, digest)


def key_id_of(presented: str) -> str | None:
    """The id of a presented key, or None when it is not shaped like one of ours."""
    match = KEY.fullmatch(presented)
    return match.group(1) if match else None


def _scrypt(raw: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(raw.encode(), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_LENGTH,
                          maxmem=256 * n * r + 1024 * 1024)


def check_mode(path: Path, mode: int) -> None:
    """Raise `KeysFileError` unless only the owner may read and write `path`."""
    if mode & 0o077:
        raise KeysFileError(
            f"{path} is open to group or others (mode {stat.S_IMODE(mode):04o}): the keys file "
            f"must be private to its owner; run: chmod 600 {path}")


def load(path: Path) -> list[Key]:
    """The keys of `path`, in file order; raises `KeysFileError`."""
    try:
        with path.open(encoding="utf-8") as file:
            check_mode(path, os.fstat(file.fileno()).st_mode)
            text = file.read()
    except OSError as error:
        raise KeysFileError(f"cannot read the keys file {path}: {error.strerror}") from None
    return parse(text, path)


def parse(text: str, path: Path) -> list[Key]:
    keys: list[Key] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        scope = next((known for known in SCOPES if len(fields) == 4 and fields[1] == known), None)
        if (scope is None
                or re.fullmatch(rf"[0-9a-f]{{{ID_HEX_DIGITS}}}", fields[2]) is None
                or not _well_formed_digest(fields[3])):
            raise KeysFileError(f"{path}:{number}: not a key line (name scope id scrypt:...)")
        keys.append(Key(fields[0], scope, fields[2], fields[3]))
    return keys


def _well_formed_digest(digest: str) -> bool:
    parts = digest.split(":")
    return (len(parts) == 6 and parts[0] == "scrypt" and all(p.isdigit() for p in parts[1:4])
            and all(re.fullmatch(r"[A-Za-z0-9+/]+=*", p) for p in parts[4:]))


def add(path: Path, name: str, scope: Scope) -> tuple[str, Key]:
    """Issue a key named `name` into `path` (created 0600, with its directory, if missing);
    returns the raw key, which exists nowhere else: show it once."""
    existing = load(path) if path.exists() else []
    if any(key.name == name for key in existing):
        raise KeyNameError(f"a key named {name!r} exists in {path}: revoke it first, or choose "
                           "another name (rotate: add the new key, then revoke the old one)")
    raw, key = new_key(name, scope)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a", encoding="utf-8") as file:
        check_mode(path, os.fstat(file.fileno()).st_mode)
        file.write((HEADER if not existing and file.tell() == 0 else "") + key.line())
        file.flush()
        os.fsync(file.fileno())
    return raw, key


def revoke(path: Path, name: str) -> Key:
    """Remove the key named `name` from `path` (rewritten, then renamed into place)."""
    keys = load(path)
    revoked = next((key for key in keys if key.name == name), None)
    if revoked is None:
        raise KeyNameError(f"no key named {name!r} in {path}")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(HEADER + "".join(key.line() for key in keys if key is not revoked))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return revoked
