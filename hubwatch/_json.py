"""JSON parsing on the hot paths (API pages, Kafka records): orjson, several times faster
than the standard library, which still gets the last word on what orjson refuses but
Python's reader accepts (lone surrogates in strings), so no input is lost to the speed-up.
orjson reads integers beyond 64 bits as floats; every count hubwatch keeps is 64-bit, so
the field checks reject such a value either way."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads"]


def loads(data: bytes | str) -> Any:
    """Like :func:`json.loads`; raises ``ValueError`` for what is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
