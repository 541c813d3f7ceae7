"""Certification bundle: manifest.json pins every artifact; verify names what changed; bundle packs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conformance.report.bundle import MANIFEST, NotABundle, make_bundle, verify

# recording.har too when the run recorded (run --record): tests/test_compare.py.
ARTIFACTS = ("findings.json", "junit.xml", "manifest.json", "profile.json", "report.html", "summary.md")
CLI = [sys.executable, "-c", "from conformance.cli import main; main()"]


@pytest.fixture
def reports(defective_reports: Path, tmp_path: Path) -> Path:
    """A private copy of a real report directory that a test may alter."""
    return Path(shutil.copytree(defective_reports, tmp_path / "reports"))


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=120)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = ord("#") if data[middle] != ord("#") else ord("%")
    path.write_bytes(bytes(data))


def test_a_fresh_report_directory_is_intact(reports: Path) -> None:
    assert sorted(p.name for p in reports.iterdir()) == list(ARTIFACTS)
    result = verify(reports)
    assert result.intact and result.artifacts == len(ARTIFACTS) - 1


@pytest.mark.parametrize("name", ARTIFACTS)
def test_verify_catches_a_one_byte_change_in_any_artifact(reports: Path, name: str) -> None:
    _flip_one_byte(reports / name)
    result = verify(reports)
    assert not result.intact
    if name == MANIFEST:
        assert result.manifest_problem is not None
    else:
        assert result.changed == (name,)
    completed = _cli("verify", reports)
    assert completed.returncode == 1, completed.stderr
    assert name in completed.stdout


def test_verify_catches_a_manifest_whose_digests_were_edited(reports: Path) -> None:
    # Someone "fixes" a digest to match their edit but cannot also fix the manifest's own digest.
    (reports / "summary.md").write_text("## ✅ sddc-conformance: CONFORMANT\n", encoding="utf-8")
    manifest = json.loads((reports / MANIFEST).read_text(encoding="utf-8"))
    forged = hashlib.sha256((reports / "summary.md").read_bytes()).hexdigest()
    manifest["artifacts"]["summary.md"]["sha256"] = forged
    (reports / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    result = verify(reports)
    assert not result.intact and result.manifest_problem and not result.changed


def test_verify_names_a_missing_and_an_added_file(reports: Path) -> None:
    (reports / "junit.xml").unlink()
    (reports / "extra.txt").write_text("not part of the run\n", encoding="utf-8")
    result = verify(reports)
    assert result.missing == ("junit.xml",) and result.added == ("extra.txt",)
    completed = _cli("verify", reports)
    assert completed.returncode == 1
    assert "missing: junit.xml" in completed.stdout and "added: extra.txt" in completed.stdout


def test_verify_treats_a_symlink_as_added(reports: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x", encoding="utf-8")
    os.symlink(tmp_path / "outside.txt", reports / "link.txt")
    assert verify(reports).added == ("link.txt",)


def test_verify_of_something_that_is_not_a_bundle_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "nowhere"):
        with pytest.raises(NotABundle):
            verify(path)
        assert _cli("verify", path).returncode == 2


def test_bundle_round_trip(reports: Path, tmp_path: Path) -> None:
    archive = tmp_path / "submission.tar.gz"
    completed = _cli("bundle", reports, "-o", archive)
    assert completed.returncode == 0, completed.stderr
    with tarfile.open(archive) as tar:
        assert sorted(m.name for m in tar.getmembers()) == sorted(f"reports/{n}" for n in ARTIFACTS)
    assert verify(archive).intact
    completed = _cli("verify", archive)
    assert completed.returncode == 0 and "INTACT" in completed.stdout


def test_bundle_is_reproducible(reports: Path, tmp_path: Path) -> None:
    first = make_bundle(reports, tmp_path / "a.tar.gz").read_bytes()
    second = make_bundle(reports, tmp_path / "b.tar.gz").read_bytes()
    assert first == second


def test_bundle_default_output_sits_beside_the_directory(reports: Path) -> None:
    assert _cli("bundle", reports).returncode == 0
    assert verify(reports.with_name("reports.tar.gz")).intact


def test_bundle_refuses_a_tampered_directory(reports: Path, tmp_path: Path) -> None:
    _flip_one_byte(reports / "findings.json")
    completed = _cli("bundle", reports, "-o", tmp_path / "x.tar.gz")
    assert completed.returncode == 1 and "findings.json" in completed.stderr
    assert not (tmp_path / "x.tar.gz").exists()


def test_bundle_refuses_to_write_into_the_directory(reports: Path) -> None:
    assert _cli("bundle", reports, "-o", reports / "self.tar.gz").returncode == 2


def _repack(source: Path, target: Path, extra: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(source) as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            handle = old.extractfile(member)
            new.addfile(member, io.BytesIO(handle.read()) if handle else None)
        new.addfile(extra, io.BytesIO(data) if extra.isfile() else None)
    return target


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, (4 if kind == tarfile.REGTYPE else 0)
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("/etc/sddc-evil"),
        _member("reports/../../escape.txt"),
        _member("../escape.txt"),
        _member("reports/link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("reports/hard", tarfile.LNKTYPE, "reports/junit.xml"),
        _member("reports/fifo", tarfile.FIFOTYPE),
        _member("reports/junit.xml"),
    ],
    ids=["absolute", "dotdot-inside", "dotdot", "symlink", "hardlink", "fifo", "duplicate"],
)
def test_hostile_tarballs_are_rejected_without_touching_disk(
    reports: Path, tmp_path: Path, member: tarfile.TarInfo
) -> None:
    archive = make_bundle(reports, tmp_path / "good.tar.gz")
    hostile = _repack(archive, tmp_path / "hostile.tar.gz", member, b"evil")
    with pytest.raises(NotABundle):
        verify(hostile)
    before = set(tmp_path.parent.rglob("*"))
    completed = _cli("verify", hostile)
    assert completed.returncode == 2
    assert "unsafe" in completed.stderr or "twice" in completed.stderr
    assert set(tmp_path.parent.rglob("*")) == before
    assert not Path("/etc/sddc-evil").exists()


def test_an_archive_that_is_not_gzip_is_a_usage_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"this is not a tarball")
    assert _cli("verify", fake).returncode == 2


@pytest.mark.slow
def test_a_run_writes_a_verifiable_bundle(tmp_path: Path) -> None:
    reports = tmp_path / "run"
    completed = _cli("run", "--report-dir", reports, "--max-examples", "20", "--seed", "5", "--quiet")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert sorted(p.name for p in reports.iterdir()) == list(ARTIFACTS)
    assert _cli("verify", reports).returncode == 0
