"""Writing report files so that a reader never sees half of one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary sibling, then rename it over `path` (atomic on one filesystem).

    A run interrupted mid-write leaves the previous file or none, never a truncated one that
    `verify` or a CI reporter would then trust.
    """
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)
    return path
