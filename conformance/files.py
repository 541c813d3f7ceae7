"""Writing report files so that a reader never sees half of one, and never through a path we did not create."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from conformance.errors import OptionsError


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Write a fresh temporary file beside `path`, then rename it over `path` (atomic on one filesystem).

    The temporary is created by mkstemp (O_CREAT|O_EXCL, a random name), so a planted
    `<name>.tmp` symlink or file is never followed or reused, and rename replaces a symlink at
    `path` itself instead of writing through it. A run interrupted mid-write leaves the previous
    file or none, never a truncated one that `verify` or a CI reporter would then trust.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def default_report_dir(root: Path | None = None) -> Path:
    """reports/<UTC timestamp>/, with a -N suffix when that name is taken."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = (root or Path("reports")) / stamp
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{stamp}-{n}")
    return candidate


def prepare_report_dir(directory: Path) -> Path:
    """Create (or accept an empty) report directory and prove it writable, before any request.

    A run writes only into an empty directory of its own: leftovers of an earlier run would be
    certified by the manifest, and planted links could redirect writes. Anything else is refused
    with a usage error before the target sees a single request.
    """
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OptionsError(f"--report-dir {directory}: {exc.strerror or exc}") from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise OptionsError(f"--report-dir {directory} exists and is not a plain directory")
        if any(directory.iterdir()):
            raise OptionsError(
                f"--report-dir {directory} is not empty: a run writes only into an empty directory of its own "
                "(omit --report-dir for a fresh reports/<timestamp>/)"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OptionsError(f"cannot write reports to {directory}: {exc.strerror or exc}") from None
    return directory


def missing_directories(directory: Path) -> list[Path]:
    """`directory` and its parents that do not exist yet, deepest first (what mkdir would make)."""
    missing: list[Path] = []
    for path in (directory, *directory.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    return missing


def discard_report_dir(made: list[Path]) -> None:
    """Remove the report directories a run made (`missing_directories` before it made them), if
    still empty, deepest first: a directory that was there before the run is never removed."""
    with contextlib.suppress(OSError):
        for path in made:
            path.rmdir()  # only ever removes an empty directory
