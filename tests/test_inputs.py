"""Hostile inputs from the user's side: report directories, tasks/config/targets files, --base-url.

Each is a usage error (exit 2, one line), never a traceback; verify/bundle certify only what the
run wrote and never follow a symlink.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conformance.cli.fleet import load_fleet
from conformance.config.file import load as load_config
from conformance.errors import ConfigError, OptionsError, TasksFileError
from conformance.options import RunOptions
from conformance.report.bundle import ARTIFACTS, MANIFEST, make_bundle, verify
from conformance.tasks import load_tasks_file

ROOT = Path(__file__).resolve().parent.parent
DEEP = b"[" * 100_000 + b"]" * 100_000


def _cli(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SDDC_PASSWORD", "SDDC_TOKEN", "SDDC_BASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "conformance", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def _one_line_usage_error(completed: subprocess.CompletedProcess[str]) -> None:
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1, completed.stderr


# -- report directories ---------------------------------------------------------------------------
@pytest.fixture
def reports(defective_reports: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "reports"
    shutil.copytree(defective_reports, copy)
    return copy


@pytest.mark.slow
def test_the_manifest_lists_exactly_the_artifacts_the_run_wrote(reports: Path) -> None:
    document = json.loads((reports / MANIFEST).read_text(encoding="utf-8"))
    # recording.har is pinned only when the run recorded (run --record), as it was not here.
    assert sorted(document["artifacts"]) == sorted(set(ARTIFACTS) - {"recording.har"})
    assert len(ARTIFACTS) + 1 == 7


@pytest.mark.parametrize("name", ["extra.txt", "junit.xml.tmp", "sub/notes.md"])
def test_a_foreign_file_is_added_and_never_certified(reports: Path, tmp_path: Path, name: str) -> None:
    (reports / name).parent.mkdir(exist_ok=True)
    (reports / name).write_text("planted", encoding="utf-8")
    result = verify(reports)
    assert result.added == (name,) and not result.intact
    completed = _cli("verify", reports)
    assert completed.returncode == 1 and f"added: {name}" in completed.stdout + completed.stderr
    # bundle packs only what the manifest lists; the archive verifies intact and holds no planted file.
    archive = make_bundle(reports, tmp_path / "out.tar.gz")
    with tarfile.open(archive) as tar:
        assert sorted(m.name.split("/", 1)[1] for m in tar) == sorted({MANIFEST, *ARTIFACTS} - {"recording.har"})
    assert verify(archive).intact


def test_a_symlink_is_reported_and_never_followed(reports: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("outside the bundle", encoding="utf-8")
    (reports / "link.txt").symlink_to(secret)
    (reports / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    result = verify(reports)
    assert set(result.added) == {"link.txt", "linkdir"} and set(result.symlinks) == {"link.txt", "linkdir"}
    assert "added: link.txt (symlink, not followed)" in result.lines()
    archive = make_bundle(reports, tmp_path / "out.tar.gz")
    with tarfile.open(archive) as tar:
        assert not any("link" in m.name for m in tar)


def test_an_artifact_replaced_by_a_symlink_is_changed_and_not_bundled(reports: Path, tmp_path: Path) -> None:
    copy = tmp_path / "summary.md"
    shutil.copy(reports / "summary.md", copy)
    (reports / "summary.md").unlink()
    (reports / "summary.md").symlink_to(copy)  # same bytes, but through a link
    assert verify(reports).changed == ("summary.md",)
    with pytest.raises(ValueError, match=r"summary\.md"):
        make_bundle(reports, tmp_path / "out.tar.gz")


def test_a_deep_manifest_is_altered_not_a_crash(reports: Path) -> None:
    (reports / MANIFEST).write_bytes(DEEP)
    assert verify(reports).manifest_problem is not None
    completed = _cli("verify", reports)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr


# -- files the user hands over -------------------------------------------------------------------
def test_a_100k_deep_tasks_file_is_a_usage_error(tmp_path: Path) -> None:
    deep = tmp_path / "tasks.json"
    deep.write_bytes(DEEP)
    with pytest.raises(TasksFileError, match="levels deep"):
        load_tasks_file(deep)
    _one_line_usage_error(_cli("run", "--base-url", "http://127.0.0.1:1", "--tasks-file", deep, "--dry-run"))


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b'{"IN_PROGRESS": ["x"]', b""])
def test_a_broken_tasks_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tasks.json"
    path.write_bytes(content)
    with pytest.raises(TasksFileError):
        load_tasks_file(path)


def test_a_config_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "sddc-conformance.toml"
    config.write_bytes(b'profile = "schema"\n# caf\xe9\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(config)
    _one_line_usage_error(_cli("run", "--config", config, "--dry-run"))


def test_a_deeply_nested_config_file_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "sddc-conformance.toml"
    config.write_bytes(b"seed = " + b"[" * 100_000 + b"]" * 100_000 + b"\n")
    with pytest.raises(ConfigError, match="deep"):
        load_config(config)


@pytest.mark.parametrize(("suffix", "content"), [(".json", b"\xff\xfe"), (".json", DEEP), (".toml", b"\xff\xfe"),
                                                 (".toml", b"a = " + DEEP)])
def test_a_broken_targets_file_is_a_usage_error(tmp_path: Path, suffix: str, content: bytes) -> None:
    targets = tmp_path / f"targets{suffix}"
    targets.write_bytes(content)
    with pytest.raises(ConfigError):
        load_fleet(targets)


def test_a_broken_targets_file_exits_2_in_one_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.json"
    targets.write_bytes(DEEP)
    _one_line_usage_error(_cli("run", "--targets", targets))


@pytest.mark.parametrize("url", ["http://127.0.0.1:1:2", "http://h:99999", "http://h/ x", "http://h/\r\nX: y"])
def test_a_malformed_base_url_is_a_usage_error(url: str) -> None:
    with pytest.raises(OptionsError, match="--base-url"):
        RunOptions(base_url=url).validate()


def test_a_base_url_with_a_password_is_refused_without_echoing_it() -> None:
    with pytest.raises(OptionsError, match="--base-url") as caught:
        RunOptions(base_url="http://user:s3cr3t-pw@127.0.0.1:1").validate()
    assert "s3cr3t-pw" not in str(caught.value)
    completed = _cli("run", "--base-url", "http://user:s3cr3t-pw@127.0.0.1:1", "--dry-run")
    _one_line_usage_error(completed)
    assert "s3cr3t-pw" not in completed.stdout + completed.stderr
