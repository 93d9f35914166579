"""Rate-limit header parsing (pure)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["parse_retry_after"]


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in delay-seconds; HTTP dates are not used by the Hub or GitHub."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
