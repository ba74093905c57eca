"""`Keyring`: the keys file as the running gateway sees it, reloaded when it changes.

Rotation without downtime: `cqrs gateway keys add` and `revoke` change the file; the gateway
looks at its mtime, ctime, size, inode and mode at most once a second (`RELOAD_INTERVAL`) and
reloads it when one changed, dropping its cache of verified keys, so a revoked key stops
working within a second. A reload that fails (the file removed, opened to group/others,
malformed) leaves the keyring empty, so every key is refused until the file is fixed: failing
closed, and logged.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from cqrs.gateway.keys import Key, KeysFileError, key_id_of, load

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0
"""Seconds between two looks at the keys file's mtime."""
Signature = tuple[int, int, int, int, int]
"""mtime, ctime (a chmod changes only it), size, inode (a rename changes it), mode."""


class Keyring:
    """The keys of one keys file by id, and the keys already verified (by the SHA-256 of the
    presented key, so a verified key costs a dict lookup rather than an scrypt)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        """Loads `path` now: raises `KeysFileError` (a gateway must not start without it)."""
        self.path = path
        self._clock = clock
        self._by_id: dict[str, Key] = {}
        self._verified: dict[bytes, Key] = {}
        self._seen: Signature | None = None
        self._checked = clock()
        self._load(self._signature())

    def __len__(self) -> int:
        return len(self._by_id)

    def refresh(self) -> None:
        """Reload the file if it changed since the last look (at most one look a second)."""
        now = self._clock()
        if now - self._checked < RELOAD_INTERVAL:
            return
        self._checked = now
        try:
            signature = self._signature()
        except KeysFileError as error:
            self._fail(error)
            return
        if signature != self._seen:
            try:
                self._load(signature)
            except KeysFileError as error:
                self._fail(error)
                return
            log.info("keys file reloaded", extra={"path": str(self.path), "keys": len(self)})

    def cached(self, presented: str) -> Key | None:
        """The key `presented` was already verified as, if any (no scrypt)."""
        return self._verified.get(_fingerprint(presented))

    def candidate(self, presented: str) -> Key | None:
        """The stored key with `presented`'s id (not verified yet), if any."""
        key_id = key_id_of(presented)
        return None if key_id is None else self._by_id.get(key_id)

    def remember(self, presented: str, key: Key) -> None:
        """Cache a verification, unless the key was revoked while it ran."""
        if self._by_id.get(key.key_id) is key:
            self._verified[_fingerprint(presented)] = key

    def _signature(self) -> Signature:
        try:
            found = os.stat(self.path)
        except OSError as error:
            raise KeysFileError(f"cannot read the keys file {self.path}: {error.strerror}"
                                ) from None
        return found.st_mtime_ns, found.st_ctime_ns, found.st_size, found.st_ino, found.st_mode

    def _load(self, signature: Signature) -> None:
        keys = load(self.path)
        self._by_id = {key.key_id: key for key in keys}
        self._verified = {}
        self._seen = signature

    def _fail(self, error: KeysFileError) -> None:
        if self._seen is not None or self._by_id:
            log.error("keys file unusable: refusing every key until it is fixed",
                      extra={"path": str(self.path), "error": str(error)})
        self._by_id, self._verified, self._seen = {}, {}, None


def _fingerprint(presented: str) -> bytes:
    return hashlib.sha256(presented.encode()).digest()
