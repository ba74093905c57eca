"""Compact JSON of an envelope's fields, byte for byte as pydantic-core writes it, by orjson.

`dumps(fields, moment)` returns `pydantic_core.to_json(fields, inf_nan_mode="null")`, which is
what `model_dump_json` writes for the envelopes: keys in the dict's order, no spaces, text as
raw UTF-8, NaN and infinities as `null`, datetimes in ISO 8601 with `Z` for a zero offset.

orjson writes those same bytes three to four times faster for what envelopes hold: str, int,
float, bool, None, and lists, tuples and dicts of them, and a datetime whose offset is whole
minutes (and UUIDs and enums, which it writes alike). Everything else goes to pydantic-core, so
the bytes, and the errors, stay its own: what orjson refuses (an int beyond 64 bits, a lone
surrogate, a key that is not a str, nesting deeper than 254, a type it does not know) and what
it would write differently (an offset with seconds, such as a zone's local mean time before
1900: pydantic-core drops the seconds, orjson rounds them; and any datetime nested in the data,
which is not checked for that).
`tests/unit/test_codec_contract.py` holds the two equal over generated fields.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

import orjson
from pydantic_core import to_json

_DATETIME = orjson.OPT_UTC_Z
_FIELDS = orjson.OPT_UTC_Z | orjson.OPT_PASSTHROUGH_DATETIME

_last: list[tuple[datetime, orjson.Fragment]] = []
"""The last datetime written, and its JSON: the processor stamps a whole batch with one `now`.
Kept by identity (two equal aware datetimes may have different offsets), replaced whole."""


def dumps(fields: dict[str, Any], moment: str) -> bytes:
    """The JSON of `fields` as pydantic-core writes it; `fields[moment]` is the envelope's
    datetime (written ahead, as a fragment). `fields` is changed, and restored, in place."""
    value = fields[moment]
    if isinstance(value, datetime) and (value.tzinfo is UTC or _whole_minutes(value)):
        try:
            fields[moment] = _fragment(value)
            return orjson.dumps(fields, default=_refuse, option=_FIELDS)
        except orjson.JSONEncodeError:
            pass
        finally:
            fields[moment] = value
    return to_json(fields, inf_nan_mode="null")


def _fragment(value: datetime) -> orjson.Fragment:
    last = _last[0] if _last else None
    if last is not None and last[0] is value:
        return last[1]
    fragment = orjson.Fragment(orjson.dumps(value, option=_DATETIME))
    _last[:] = [(value, fragment)]
    return fragment


def _whole_minutes(value: datetime) -> bool:
    offset = value.utcoffset()
    return offset is None or (offset.seconds % 60 == 0 and offset.microseconds == 0)


def _refuse(value: object) -> NoReturn:
    # orjson calls this for what it passes through (datetimes nested in the data) and for types
    # it does not know: either way pydantic-core writes the whole document instead.
    raise TypeError(type(value).__name__)
