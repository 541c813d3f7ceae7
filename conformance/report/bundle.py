"""The certification bundle: a report directory whose manifest.json pins every artifact by sha256.

`verify` recomputes the digests of a directory or of a .tar.gz made by `bundle` and names every
artifact that changed, is missing or was added. manifest.json also pins itself (`self_sha256`,
computed with that field zeroed), so an edit of the manifest alone is caught as well.

This is tamper-evidence, not a signature: whoever can rewrite every file can recompute every
digest. Submit the bundle's sha256 through a separate channel, or sign the .tar.gz, to bind it.

A .tar.gz is verified in memory, member by member: nothing from it is ever written to disk, so a
hostile archive (absolute paths, `..`, links, devices, a decompression bomb) cannot escape.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from conformance.bodies import decode_json
from conformance.files import replace_atomically

MANIFEST = "manifest.json"
# What a run writes besides the manifest: the manifest pins exactly these, by name. Anything else
# in a report directory (a planted file, a leftover, a symlink) is "added", never certified.
ARTIFACTS = ("junit.xml", "findings.json", "report.html", "summary.md", "profile.json", "recording.har")
SELF_DIGEST_FIELD = "self_sha256"
_ZERO_DIGEST = "0" * 64
_DIGEST = re.compile(r"[0-9a-f]{64}")
# Reports are a few MiB at most; the caps stop a decompression bomb long before memory runs out.
MAX_MEMBERS = 10_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024


class NotABundle(ValueError):
    """The input is not something verify can judge (exit 2): no manifest, unreadable, unsafe archive."""


@dataclass(frozen=True)
class Verification:
    artifacts: int
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    manifest_problem: str | None = None
    # Added entries that are symlinks: reported, never followed.
    symlinks: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing or self.added or self.manifest_problem)

    def lines(self) -> list[str]:
        out = [f"manifest.json: {self.manifest_problem}"] if self.manifest_problem else []
        out += [f"changed: {name}" for name in self.changed]
        out += [f"missing: {name}" for name in self.missing]
        out += [f"added: {name}" + (" (symlink, not followed)" if name in self.symlinks else "")
                for name in self.added]
        return out


@dataclass
class _Contents:
    """What a bundle holds, wherever it lives: its manifest's bytes and every other file's digest."""

    manifest: bytes | None = None
    digests: dict[str, str] = field(default_factory=dict)
    symlinks: set[str] = field(default_factory=set)


def sha256_file(path: Path) -> str:
    """sha256 of a regular file, opened without following a symlink (O_NOFOLLOW)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_file(path: Path) -> bytes:
    """A regular file's bytes; never through a symlink."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _files(directory: Path) -> Iterator[tuple[str, Path]]:
    """Every entry under the directory that is not a directory, symlinks included, never followed."""
    for root, dirs, names in os.walk(directory, followlinks=False):
        here = Path(root)
        # os.walk lists a symlink to a directory under dirs; it is an entry of its own, not a folder.
        entries = [*names, *(d for d in dirs if (here / d).is_symlink())]
        for name in entries:
            path = here / name
            yield path.relative_to(directory).as_posix(), path
    # os.walk order depends on the file system; callers sort.


def is_regular(path: Path) -> bool:
    """lstat: a regular file, not a symlink to one."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def artifact_digests(directory: Path, names: Iterable[str] = ARTIFACTS) -> dict[str, str]:
    """sha256 of the named artifacts this run wrote (never anything else found in the directory)."""
    # A symlink is never an artifact: hashing its target would vouch for a file outside the bundle.
    return {name: sha256_file(directory / name) for name in names if is_regular(directory / name)}


# -- manifest self digest --------------------------------------------------------------------------
def seal(document: dict[str, Any]) -> bytes:
    """Serialise a manifest with its self digest as the last field."""
    body = {k: v for k, v in document.items() if k != SELF_DIGEST_FIELD}
    draft = _dump({**body, SELF_DIGEST_FIELD: _ZERO_DIGEST})
    return _dump({**body, SELF_DIGEST_FIELD: hashlib.sha256(draft).hexdigest()})


def _dump(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _manifest_problem(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    # Depth-bounded: a manifest nested 100k deep is "altered", not a RecursionError.
    decoded = decode_json(raw)
    if not decoded.ok:
        return None, "not valid JSON (altered)"
    document = decoded.value
    if not isinstance(document, dict) or not isinstance(document.get("artifacts"), dict):
        return None, "has no artifact list (altered)"
    claimed = document.get(SELF_DIGEST_FIELD)
    if not isinstance(claimed, str) or not _DIGEST.fullmatch(claimed):
        return document, f"has no valid {SELF_DIGEST_FIELD} (altered)"
    needle = f'"{SELF_DIGEST_FIELD}": "{claimed}"'.encode()
    if raw.count(needle) != 1:
        return document, "altered (its own digest cannot be located)"
    zeroed = raw.replace(needle, f'"{SELF_DIGEST_FIELD}": "{_ZERO_DIGEST}"'.encode())
    if hashlib.sha256(zeroed).hexdigest() != claimed:
        return document, "altered (its own digest does not match)"
    return document, None


def _compare(contents: _Contents) -> Verification:
    if contents.manifest is None:
        raise NotABundle(f"no {MANIFEST}: not a report bundle")
    document, problem = _manifest_problem(contents.manifest)
    expected: dict[str, str] = {}
    if document is not None and isinstance(document.get("artifacts"), dict):
        for name, entry in document["artifacts"].items():
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            expected[str(name)] = str(digest)
    actual = contents.digests
    return Verification(
        artifacts=len(expected),
        changed=tuple(sorted(n for n in expected.keys() & actual.keys() if expected[n] != actual[n])),
        missing=tuple(sorted(expected.keys() - actual.keys())),
        added=tuple(sorted(actual.keys() - expected.keys())),
        manifest_problem=problem,
        symlinks=tuple(sorted(contents.symlinks)),
    )


# -- reading a directory or an archive -------------------------------------------------------------
def _read_directory(directory: Path) -> _Contents:
    contents = _Contents()
    manifest = directory / MANIFEST
    if is_regular(manifest):
        contents.manifest = read_file(manifest)
    for name, path in sorted(_files(directory)):
        if name == MANIFEST and contents.manifest is not None:
            continue
        if is_regular(path):
            contents.digests[name] = sha256_file(path)
        else:
            # A symlink (or a FIFO, a socket) counts as added: its content can never match a digest.
            contents.digests[name] = "symlink" if path.is_symlink() else "not a regular file"
            if path.is_symlink():
                contents.symlinks.add(name)
    return contents


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or path.is_absolute():
        raise NotABundle(f"unsafe archive member {name!r}: absolute path")
    if ".." in path.parts or "\\" in name:
        raise NotABundle(f"unsafe archive member {name!r}: leaves the bundle")
    parts = tuple(p for p in path.parts if p != ".")
    if not parts:
        raise NotABundle(f"unsafe archive member {name!r}: empty name")
    return PurePosixPath(*parts)


def _archive_members(archive: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    total = 0
    seen: set[PurePosixPath] = set()
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_MEMBERS:
                    raise NotABundle(f"{archive} has more than {MAX_MEMBERS} members")
                name = _safe_name(member.name)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise NotABundle(f"unsafe archive member {member.name!r}: not a regular file")
                if name in seen:
                    raise NotABundle(f"archive member {member.name!r} appears twice")
                seen.add(name)
                total += member.size
                if total > MAX_TOTAL_BYTES:
                    raise NotABundle(f"{archive} unpacks to more than {MAX_TOTAL_BYTES} bytes")
                handle = tar.extractfile(member)
                yield name, handle.read() if handle is not None else b""
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, zlib.error) as exc:
        raise NotABundle(f"{archive} is not a readable .tar.gz: {exc}") from None


def _read_archive(archive: Path) -> _Contents:
    members = dict(_archive_members(archive))
    roots = {name.parts[0] for name in members}
    # `bundle` writes one top-level directory; accept a flat archive too.
    prefix: tuple[str, ...] = ()
    if PurePosixPath(MANIFEST) not in members and len(roots) == 1:
        prefix = (next(iter(roots)),)
    contents = _Contents()
    for name, data in members.items():
        if name.parts[: len(prefix)] != prefix:
            contents.digests[name.as_posix()] = hashlib.sha256(data).hexdigest()
            continue
        relative = PurePosixPath(*name.parts[len(prefix):]).as_posix()
        if relative == MANIFEST:
            contents.manifest = data
        else:
            contents.digests[relative] = hashlib.sha256(data).hexdigest()
    return contents


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar.gz", ".tgz"))


def verify(path: Path) -> Verification:
    """Verify a report directory or a bundle archive; NotABundle when it is neither."""
    if path.is_dir():
        return _compare(_read_directory(path))
    if is_archive(path):
        return _compare(_read_archive(path))
    if path.exists():
        raise NotABundle(f"{path} is neither a report directory nor a .tar.gz bundle")
    raise NotABundle(f"{path} does not exist")


# -- writing an archive ---------------------------------------------------------------------------
def make_bundle(directory: Path, output: Path) -> Path:
    """Pack a verified report directory into one reproducible .tar.gz under a single top-level folder."""
    result = verify(directory)
    # Files the manifest does not list are left out (never packed); anything listed must match.
    if result.changed or result.missing or result.manifest_problem:
        raise ValueError("the report directory does not match its manifest: " + "; ".join(result.lines()))
    directory = directory.resolve()
    output = output.resolve()
    if output.is_relative_to(directory):
        raise NotABundle(f"{output} is inside the report directory; write the bundle elsewhere")
    root = directory.name or "report"
    buffer = io.BytesIO()
    # Fixed metadata (mtime, owner, order) makes the same reports give the same archive bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz, tarfile.open(
        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT
    ) as tar:
        listed = json.loads(read_file(directory / MANIFEST))["artifacts"]
        names = [MANIFEST, *sorted(str(name) for name in listed)]
        for name in names:
            data = read_file(directory / name)
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return replace_atomically(output, lambda tmp: tmp.write_bytes(buffer.getvalue()))


# -- reading a bundle to keep it (fleet merge) -----------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A report directory or bundle read once into memory: what was verified is what is kept.

    `root` is the archive's top-level folder (the report directory's name when `bundle` made it)
    or, for a directory, its own name. `files` holds every regular file by its relative name.
    """

    verification: Verification
    root: str
    manifest: bytes | None
    files: dict[str, bytes]

    def manifest_document(self) -> dict[str, Any] | None:
        document = decode_json(self.manifest).value if self.manifest is not None else None
        return document if isinstance(document, dict) else None


def _contents_of(manifest: bytes | None, files: dict[str, bytes], symlinks: set[str]) -> _Contents:
    contents = _Contents(manifest=manifest, symlinks=set(symlinks))
    contents.digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    for name in symlinks:
        contents.digests[name] = "symlink"
    return contents


def snapshot(path: Path) -> Snapshot:
    """Read a report directory or bundle into memory and verify it (NotABundle when it is neither).

    Unlike `verify`, the bytes are kept, so a caller that copies the artifacts copies exactly the
    bytes that matched their digests, not a file that may have changed on disk since.
    """
    files: dict[str, bytes] = {}
    symlinks: set[str] = set()
    if path.is_dir() and not path.is_symlink():
        root, total = path.name, 0
        for name, entry in sorted(_files(path)):
            if not is_regular(entry):
                # Never read through: recorded as added, as verify does.
                symlinks.add(name)
                continue
            files[name] = read_file(entry)
            total += len(files[name])
            if len(files) > MAX_MEMBERS or total > MAX_TOTAL_BYTES:
                raise NotABundle(f"{path} holds more than {MAX_MEMBERS} files or {MAX_TOTAL_BYTES} bytes")
    elif is_archive(path) and not path.is_symlink():
        members = dict(_archive_members(path))
        roots = {name.parts[0] for name in members}
        if PurePosixPath(MANIFEST) in members or len(roots) != 1:
            raise NotABundle(f"{path} is not one report folder (as `bundle` writes it)")
        root = next(iter(roots))
        files = {PurePosixPath(*name.parts[1:]).as_posix(): data for name, data in members.items()
                 if len(name.parts) > 1}
    else:
        raise NotABundle(f"{path} is neither a report directory nor a .tar.gz bundle")
    manifest = files.pop(MANIFEST, None)
    return Snapshot(_compare(_contents_of(manifest, files, symlinks)), root, manifest, files)


def sealed_problem(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """A sealed document (a manifest, a shard record) and what is wrong with it, None when intact."""
    return _manifest_problem(raw)
