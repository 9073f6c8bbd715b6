"""Sizes as settings and options write them: 200MB, 1 GiB, or a number of bytes."""

from __future__ import annotations

import re

_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: str | int) -> int:
    """'200MB', '1 GiB' or 1024 → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError(f"size must be positive, got {value}")
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    unit = match and match.group(2).lower()
    if not match or unit not in _SIZE_UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"not a size: {value!r} (write it like 200MB, 1GB or 512KiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])
