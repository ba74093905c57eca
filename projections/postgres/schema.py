"""The PostgreSQL schema of a deployment: derived from its topic prefix, or set explicitly.

Each topic prefix (a deployment's namespace) has a *live schema* of its own, in which its
projector writes and its queries read (the DSN's `search_path` names it; the code names tables
unqualified). A rebuild's side models live beside it as `<live>__rebuild_<n>`, `<live>__retired_<n>`
and `<live>__pit_<n>`, so that one prefix's list, drop and swap never see another's.

Naming contract (`schema_for_prefix`), deterministic and injective:

- a *plain* prefix (lower-case letters and digits, words joined by single `-`, one trailing `.`,
  starting with a letter, such as `cqrs.` or `test-ab12.`) maps to its words joined by `_`
  (`cqrs`, `test_ab12`); no two plain prefixes share a name, and reading `_` as `-` and adding
  the `.` gives the prefix back;
- any other prefix (upper case, `_`, inner `.`, no trailing `.`, too long, or one whose name
  would be a system schema) maps to a readable base and `__` + 8 hex digits of its SHA-256, which
  no plain prefix can produce (plain names never hold `__`).

Every live name fits `MAX_SCHEMA` bytes, which leaves room for the longest side-model suffix
within PostgreSQL's 63-byte identifiers. An explicit schema (`CQRS_PG_SCHEMA`) must be a plain
lower-case identifier of that length that is not itself a side model's name (`check_schema`).
"""

from __future__ import annotations

import hashlib
import re

from psycopg.conninfo import make_conninfo

IDENTIFIER_LIMIT = 63
"""PostgreSQL's identifier length in bytes (NAMEDATALEN - 1); longer names are cut silently."""
SIDE_KINDS = ("rebuild", "retired", "pit")
SIDE_SUFFIX_MAX = len("__retired_") + 10  # a generation of up to 10 digits
MAX_SCHEMA = IDENTIFIER_LIMIT - SIDE_SUFFIX_MAX
"""The longest live schema name (43 bytes): `<live>__retired_<n>` still fits."""
HASH_LENGTH = 8

_PLAIN_PREFIX = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*\.$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_SIDE_MODEL = re.compile(rf"__({'|'.join(SIDE_KINDS)})_\d+$")
_RESERVED = ("public", "information_schema")


class SchemaNameError(ValueError):
    """An explicit schema name this project cannot use as a live schema (see `check_schema`)."""


def schema_for_prefix(prefix: str) -> str:
    """The live schema of topic prefix `prefix` (see the module's naming contract)."""
    if _PLAIN_PREFIX.match(prefix):
        name = prefix[:-1].replace("-", "_")
        if len(name) <= MAX_SCHEMA and name not in _RESERVED and not name.startswith("pg_"):
            return name
    digest = hashlib.sha256(prefix.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    base = re.sub(r"_+", "_", re.sub(r"[^a-z0-9_]", "_", prefix.lower())).strip("_")
    if not base or not base[0].isalpha() or base.startswith("pg_"):
        base = f"p_{base}".rstrip("_")
    return f"{base[:MAX_SCHEMA - HASH_LENGTH - 2].rstrip('_')}__{digest}"


def check_schema(name: str) -> str:
    """`name` if it can be a live schema; `SchemaNameError` saying why not otherwise."""
    if not _IDENTIFIER.match(name):
        raise SchemaNameError(f"schema {name!r}: expected a lower-case identifier "
                              "(letters, digits, _; not starting with a digit)")
    if len(name) > MAX_SCHEMA:
        raise SchemaNameError(f"schema {name!r}: {len(name)} bytes, at most {MAX_SCHEMA} "
                              "(room for the rebuild suffixes within 63)")
    if name.startswith("pg_") or name == "information_schema":
        raise SchemaNameError(f"schema {name!r}: a name PostgreSQL keeps for itself")
    if _SIDE_MODEL.search(name):
        raise SchemaNameError(f"schema {name!r}: the name of a rebuild's side model")
    return name


def side_model_pattern(live: str) -> re.Pattern[str]:
    """Names of the side models of live schema `live`: group 1 the kind, group 2 the
    generation. Matches no other live schema's side models (the suffix is parsed from the end)."""
    return re.compile(rf"^{re.escape(live)}__({'|'.join(SIDE_KINDS)})_(\d+)$")


def side_model_name(live: str, kind: str, generation: int) -> str:
    """`<live>__<kind>_<generation>`."""
    if kind not in SIDE_KINDS:
        raise ValueError(f"side model kind {kind!r}: one of {', '.join(SIDE_KINDS)}")
    return f"{live}__{kind}_{generation}"


def schema_dsn(dsn: str, schema: str) -> str:
    """`dsn` with `search_path` set to `schema` only (its tables, unqualified, are that
    schema's; a table PostgreSQL cannot find there is an error, never another schema's)."""
    return make_conninfo(dsn, options=f"-csearch_path={schema}")
