"""Report directories: only what a run made is removed when it ends in a usage error."""

from __future__ import annotations

from pathlib import Path

from conformance.files import discard_report_dir, missing_directories, prepare_report_dir


def test_missing_directories_are_the_ones_mkdir_would_make(tmp_path: Path) -> None:
    wanted = tmp_path / "a" / "b" / "c"
    assert missing_directories(wanted) == [wanted, tmp_path / "a" / "b", tmp_path / "a"]
    assert missing_directories(tmp_path) == []


def test_a_discarded_run_removes_what_it_made_and_nothing_that_was_there(tmp_path: Path) -> None:
    existing = tmp_path / "reports"
    existing.mkdir()  # empty, made by the user before the run: must survive
    wanted = existing / "2026" / "run"
    made = missing_directories(wanted)
    prepare_report_dir(wanted)
    discard_report_dir(made)
    assert not (existing / "2026").exists()
    assert existing.is_dir()


def test_a_directory_with_files_in_it_is_never_removed(tmp_path: Path) -> None:
    wanted = tmp_path / "new" / "run"
    made = missing_directories(wanted)
    prepare_report_dir(wanted)
    (tmp_path / "new" / "keep.txt").write_text("x", encoding="utf-8")
    discard_report_dir(made)
    assert not wanted.exists()
    assert (tmp_path / "new" / "keep.txt").exists()
