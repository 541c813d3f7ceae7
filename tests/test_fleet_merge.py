"""Sharded fleets: `run --targets FILE --shard K/N`, and `fleet merge` that trusts nothing it is given.

Most tests build shard outputs by hand (a report directory is a few files and a sealed manifest),
so every refusal is checked without running the suite; one rehearsal runs the real thing.
"""

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
from typing import Any

import pytest

from conformance.cli import main
from conformance.cli.fleet import merge_exit
from conformance.errors import OptionsError, ReportError
from conformance.outcome import ExitCode
from conformance.report.bundle import ARTIFACTS, MANIFEST, artifact_digests, make_bundle, seal
from conformance.report.fleet_index import TargetRun
from conformance.report.fleet_merge import merge
from conformance.report.fleet_shard import (
    SHARD_RECORD,
    ShardSpec,
    build_record,
    parse_shard,
    select,
    shard_of,
    write_record,
)
from tests.conftest import free_port

NAMES = ["a", "b", "c", "d", "e", "f"]
# A fleet of six fake targets: verdict and failed requirements of each.
VERDICTS = {"a": ("CONFORMANT", []), "b": ("NOT CONFORMANT", ["SRV-NO-5XX"]), "c": ("CONFORMANT", []),
            "d": ("NOT CONFORMANT", ["SCH-ERROR-BODY"]), "e": ("NO VERDICT", []), "f": ("CONFORMANT", [])}
CODES = {"CONFORMANT": 0, "NOT CONFORMANT": 1, "NO VERDICT": 3}
TARGETS_SHA = hashlib.sha256(b"the targets file").hexdigest()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def fake_report(directory: Path, verdict: str, failed: list[str]) -> Path:
    """A report directory as a run writes it: four artifacts and a sealed manifest pinning them."""
    directory.mkdir(parents=True)
    outcomes = [{"id": rid, "outcome": "FAIL" if rid in failed else "PASS"}
                for rid in ("SRV-NO-5XX", "SCH-ERROR-BODY", "SCH-STATUS")]
    (directory / "findings.json").write_text(json.dumps({"target": {"url": f"http://{directory.name}.example"},
                                                          "requirements": outcomes}), encoding="utf-8")
    for name in ("junit.xml", "report.html", "summary.md"):
        (directory / name).write_text(f"{name} of {directory.name}: {verdict}\n", encoding="utf-8")
    artifacts = {name: {"sha256": digest} for name, digest in artifact_digests(directory).items()}
    (directory / MANIFEST).write_bytes(seal({"tool": "sddc-conformance", "verdict": verdict, "artifacts": artifacts}))
    return directory


def fake_shard(root: Path, index: int, count: int = 3, names: list[str] = NAMES,
               targets_sha: str = TARGETS_SHA) -> Path:
    spec = ShardSpec(index, count)
    root.mkdir(parents=True)
    runs = []
    for name in select(names, spec):
        verdict, failed = VERDICTS.get(name, ("CONFORMANT", []))
        fake_report(root / name, verdict, failed)
        runs.append(TargetRun(name, CODES[verdict], root / name, ""))
    write_record(root, build_record(spec, names, targets_sha, runs))
    return root


@pytest.fixture
def shards(tmp_path: Path) -> list[Path]:
    return [fake_shard(tmp_path / f"shard-{k}", k) for k in (1, 2, 3)]


def reseal_record(shard: Path, change: Any) -> None:
    record = json.loads((shard / SHARD_RECORD).read_text(encoding="utf-8"))
    change(record)
    (shard / SHARD_RECORD).write_bytes(seal(record))


# -- the shard rule ------------------------------------------------------------------------------------

def test_shards_are_balanced_disjoint_and_stable_when_targets_are_appended() -> None:
    for count in range(1, 7):
        for total in range(0, 20):
            names = [f"t{i}" for i in range(total)]
            slices = [select(names, ShardSpec(k, count)) for k in range(1, count + 1)]
            assert sorted(n for part in slices for n in part) == sorted(names)  # every target once
            assert max(map(len, slices)) - min(map(len, slices)) <= 1  # balanced
            grown = [select([*names, "new1", "new2"], ShardSpec(k, count)) for k in range(1, count + 1)]
            # Appending moves no earlier target to another shard.
            assert all(grown[k][: len(slices[k])] == slices[k] for k in range(count))
    assert [shard_of(i, 3) for i in range(6)] == [1, 2, 3, 1, 2, 3]


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "1/3/", "-1/3", "1/1001"])
def test_bad_shard_specs(text: str) -> None:
    with pytest.raises(OptionsError, match="expected K/N"):
        parse_shard(text)


def test_shard_spec() -> None:
    assert parse_shard(" 2 / 3 ") == ShardSpec(2, 3) and str(parse_shard("1/1")) == "1/1"


def test_shard_flag_needs_targets_and_a_good_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["run", "--shard", "1/2", "--dry-run"], capsys)
    assert code == 2 and "--shard needs --targets FILE" in err
    (tmp_path / "t.toml").write_text("[[targets]]\nname = 'a'\n", encoding="utf-8")
    code, _, err = run_cli(["run", "--targets", "t.toml", "--shard", "3/2", "--report-dir", "o"], capsys)
    assert code == 2 and "expected K/N" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_shard_run_leaves_a_record_that_merges(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SDDC_TOKEN", "SDDC_PASSWORD", "SDDC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # Shard 2/3 holds only the unreachable target (quick), shard 3/3 nothing at all.
    Path("t.toml").write_text(f"""[[targets]]\nname = "a"\n
[[targets]]\nname = "gone"\nbase-url = "http://127.0.0.1:{free_port()}"\ntoken = "x"\ntimeout = 1\n""")
    code, out, _ = run_cli(["run", "--targets", "t.toml", "--shard", "2/3", "--report-dir", "s2", "-q"], capsys)
    assert code == 3 and "checking 1 target (shard 2/3 of 2)" in out and "[gone] NO VERDICT (exit 3)" in out
    code, out, _ = run_cli(["run", "--targets", "t.toml", "--shard", "3/3", "--report-dir", "s3", "-q"], capsys)
    assert code == 0 and "checking 0 targets (shard 3/3 of 2)" in out
    record = json.loads(Path("s2", SHARD_RECORD).read_text())
    assert record["shard"]["index"] == 2 and record["targets_file"]["targets"] == ["a", "gone"]
    assert record["targets_file"]["sha256"] == hashlib.sha256(Path("t.toml").read_bytes()).hexdigest()
    assert list(record["results"]) == ["gone"] and record["results"]["gone"]["exit_code"] == 3
    code, out, _ = run_cli(["fleet", "merge", "s2", "s3", "-o", "m", "-q"], capsys)
    assert code == 3
    assert "missing: shard 1/3 never arrived: a (NO VERDICT)" in out and "[gone] NO VERDICT (exit 3)\n" in out


# -- merging -------------------------------------------------------------------------------------------

def summary(out: Path) -> dict[str, Any]:
    return {t["name"]: (t["status"], t["exit_code"], t["failed"], t["note"])
            for t in json.loads((out / "fleet.json").read_text(encoding="utf-8"))["targets"]}


def test_merge_of_every_shard(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["fleet", "merge", *map(str, shards), "-o", str(tmp_path / "m")], capsys)
    assert code == 3  # the --targets rule: e's NO VERDICT beats b's and d's NOT CONFORMANT
    merged = summary(tmp_path / "m")
    assert list(merged) == NAMES  # the targets file's order, whatever the shards' order
    assert merged == {n: (v, CODES[v], f, None) for n, (v, f) in VERDICTS.items()}
    assert "[b] NOT CONFORMANT (exit 1)" in out and "| SRV-NO-5XX | MUST |" in out
    # What was copied is exactly what was verified: each target verifies in the merged output.
    for name in NAMES:
        assert run_cli(["verify", str(tmp_path / "m" / name)], capsys)[0] == 0
    assert {p.name for p in (tmp_path / "m").iterdir()} == {*NAMES, "index.html", "index.md", "fleet.json"}


def test_a_folder_of_shards_is_opened(shards: list[Path], tmp_path: Path) -> None:
    # As a CI's artifact download lays them out: one folder holding a folder per shard.
    result = merge([tmp_path], tmp_path.parent / f"{tmp_path.name}-out")
    assert [r.exit_code for r in result.runs] == [0, 1, 0, 1, 3, 0] and not result.problems
    # A shard that lost its record among them is named, and its targets have no verdict.
    (shards[2] / SHARD_RECORD).unlink()
    result = merge([tmp_path], tmp_path.parent / f"{tmp_path.name}-out2")
    assert result.refused and result.problems == [
        f"added: {shards[2]} (among the shards, but not a shard directory)",
        "missing: shard 3/3 never arrived: c, f (NO VERDICT)"]


def test_a_missing_shard_is_no_verdict_for_its_targets(shards: list[Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Shard 1 (a, d) never arrived; the others are conformant but for f... all three of 2 and 3.
    code, out, _ = run_cli(["fleet", "merge", str(shards[1]), str(shards[2]), "-o", str(tmp_path / "m"), "-q"],
                           capsys)
    assert code == 3
    assert "missing: shard 1/3 never arrived: a, d (NO VERDICT)" in out
    assert "[a] NO VERDICT (exit 3): missing: shard 1/3 never arrived" in out
    merged = summary(tmp_path / "m")
    assert merged["a"] == ("NO VERDICT", 3, [], "missing: shard 1/3 never arrived")
    assert merged["b"] == ("NOT CONFORMANT", 1, ["SRV-NO-5XX"], None)
    assert json.loads((tmp_path / "m" / "fleet.json").read_text())["problems"] == [
        "missing: shard 1/3 never arrived: a, d (NO VERDICT)"]
    assert "missing: shard 1/3" in (tmp_path / "m" / "index.md").read_text(encoding="utf-8")
    assert "missing: shard 1/3" in (tmp_path / "m" / "index.html").read_text(encoding="utf-8")


def test_missing_shard_of_conformant_targets_still_fails() -> None:
    runs = [TargetRun("a", 0, Path("a"), ""), TargetRun("b", 3, Path("b"), "", "missing: shard 2/2 never arrived")]
    assert merge_exit(runs, refused=False) == ExitCode.NO_VERDICT
    assert merge_exit(runs[:1], refused=True) == ExitCode.NOT_CONFORMANT
    assert merge_exit(runs[:1], refused=False) == ExitCode.OK


@pytest.mark.parametrize(
    ("tamper", "line", "hit"),
    [
        (lambda s: (s / "b" / "summary.md").write_text("all fine\n"),
         "refused: {s}/b: does not match its manifest (changed: summary.md)", "b"),
        (lambda s: (s / "b" / "junit.xml").unlink(), "(missing: junit.xml)", "b"),
        (lambda s: (s / "b" / "extra.txt").write_text("x"), "(added: extra.txt)", "b"),
        (lambda s: os.symlink("/etc/passwd", s / "b" / "passwd"), "added: passwd (symlink, not followed)", "b"),
        # The whole report swapped for another, intact in itself.
        (lambda s: (shutil.rmtree(s / "b"), fake_report(s / "b", "CONFORMANT", [])),
         "refused: {s}/b: its manifest.json is not the one its shard recorded", "b"),
        (lambda s: shutil.rmtree(s / "e"), "refused: {s}/e: missing or not a directory", "e"),
        (lambda s: (shutil.rmtree(s / "e"), os.symlink(s / "b", s / "e")),
         "refused: {s}/e: missing or not a directory", "e"),
        (lambda s: (s / "stray").mkdir(), "added: {s}/stray (not in the shard record)", ""),
        (lambda s: (s / SHARD_RECORD).write_text(
            (s / SHARD_RECORD).read_text().replace('"exit_code": 1', '"exit_code": 0')),
         "refused: {s}/shard.json: altered (its own digest does not match)", "be"),
        # Resealed with b's exit code flipped: its manifest still says NOT CONFORMANT.
        (lambda s: reseal_record(s, lambda r: r["results"]["b"].update(exit_code=0)),
         "refused: {s}/b: its verdict disagrees with the exit code its shard recorded", "b"),
        (lambda s: reseal_record(s, lambda r: r["targets_file"].update(sha256="0" * 64)),
         "refused: {s}/shard.json: foreign: shard 2/3 of another targets file or shard count", "be"),
        (lambda s: reseal_record(s, lambda r: r["results"].pop("e")),
         "refused: {s}/shard.json: its results are not shard 2/3's targets under the rule", "be"),
        (lambda s: reseal_record(s, lambda r: r["targets_file"].update(targets=["../x", *NAMES[1:]])),
         "refused: {s}/shard.json: malformed target list", "be"),
        (lambda s: reseal_record(s, lambda r: r["targets_file"].update(sha256="abc")),
         "refused: {s}/shard.json: malformed shard or digest", "be"),
        (lambda s: reseal_record(s, lambda r: r["results"]["b"].update(manifest_sha256="../b")),
         "refused: {s}/shard.json: malformed manifest digest", "be"),
        (lambda s: reseal_record(s, lambda r: r.update(shard_record_version=2)),
         "refused: {s}/shard.json: not a shard record of this suite's version", "be"),
        (lambda s: reseal_record(s, lambda r: r["shard"].update(index=4)),
         "refused: {s}/shard.json: malformed shard or digest", "be"),
        # b's report left out of the record while the shard says b was judged.
        (lambda s: reseal_record(s, lambda r: r["results"]["b"].update(manifest_sha256=None)),
         "refused: {s}/shard.json: target 'b' has a verdict but no report", "b"),
    ],
)
def test_tampered_or_foreign_evidence_is_named_and_refused(
    shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], tamper: Any, line: str, hit: str,
) -> None:
    tamper(shards[1])  # shard 2/3: b and e
    code, out, _ = run_cli(["fleet", "merge", *map(str, shards), "-o", str(tmp_path / "m"), "-q"], capsys)
    assert code == 1, out
    assert line.format(s=shards[1]) in out
    assert "REFUSED EVIDENCE" in out
    merged = summary(tmp_path / "m")
    # Nothing from the refused evidence counts (its targets have no verdict); the other verdicts stand.
    for name, (verdict, failed) in VERDICTS.items():
        expected = ("NO VERDICT", 3, []) if name in hit else (verdict, CODES[verdict], failed)
        assert merged[name][:3] == expected, name
    assert not (tmp_path / "m" / "b" / "passwd").exists()


def test_exit_codes_a_shard_records_without_a_report(shards: list[Path], tmp_path: Path) -> None:
    # A target whose entry could not run (exit 2) writes no report: the record is its evidence.
    shutil.rmtree(shards[1] / "e")
    reseal_record(shards[1], lambda r: r["results"]["e"].update(exit_code=2, manifest_sha256=None))
    result = merge(shards, tmp_path / "m")
    assert not result.refused and {r.name: r.status for r in result.runs}["e"] == "USAGE ERROR"
    assert merge_exit(result.runs, result.refused) == ExitCode.USAGE_ERROR  # the --targets order


def test_an_interrupted_target_reads_no_verdict(shards: list[Path], tmp_path: Path) -> None:
    reseal_record(shards[1], lambda r: r["results"]["e"].update(exit_code=130))
    result = merge(shards, tmp_path / "m")
    assert not result.problems and {r.name: r.exit_code for r in result.runs}["e"] == 130


def test_a_bare_report_without_a_verdict_is_refused(tmp_path: Path) -> None:
    report = fake_report(tmp_path / "in" / "a", "MAYBE", [])
    result = merge([report], tmp_path / "m")
    assert result.refused and result.problems == [f"refused: {report}: its manifest has no verdict"]
    assert [(r.name, r.exit_code) for r in result.runs] == [("a", 3)]


def test_the_output_is_never_a_symlink(shards: list[Path], tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out")
    with pytest.raises(ReportError, match="is not an empty directory"):
        merge(shards, tmp_path / "out")
    assert not any((tmp_path / "elsewhere").iterdir())


def test_duplicates_are_refused_in_every_copy(shards: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "again"
    shutil.copytree(shards[0], copy)
    result = merge([*shards, copy], tmp_path / "m")
    assert result.refused
    assert any(p.startswith("duplicate: target 'a' arrived 2 times") for p in result.problems)
    assert {r.name: r.exit_code for r in result.runs}["a"] == 3
    assert not (tmp_path / "m" / "a").exists()


def test_bundles_and_report_directories_are_accepted(shards: list[Path], tmp_path: Path) -> None:
    # Shard 3 (c, f) arrives as one bundle and one bare report directory instead.
    bundle = make_bundle(shards[2] / "c", tmp_path / "c.tar.gz")
    result = merge([shards[0], shards[1], bundle, shards[2] / "f"], tmp_path / "m")
    assert not result.problems and [r.exit_code for r in result.runs] == [0, 1, 0, 1, 3, 0]
    assert (tmp_path / "m" / "c" / "report.html").is_file()


def test_a_bundle_of_another_fleet_is_foreign(shards: list[Path], tmp_path: Path) -> None:
    stranger = fake_report(tmp_path / "zz" / "stranger", "CONFORMANT", [])
    bundle = make_bundle(stranger, tmp_path / "stranger.tar.gz")
    result = merge([*shards, bundle], tmp_path / "m")
    assert result.refused and any("foreign: target 'stranger' is not in the shards' targets file" in p
                                  for p in result.problems)
    assert [r.name for r in result.runs] == NAMES and not (tmp_path / "m" / "stranger").exists()


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_hostile_archives_write_nothing_outside(shards: list[Path], tmp_path: Path) -> None:
    escape = _archive(tmp_path / "escape.tar.gz", {"c/../../evil": b"x", "c/manifest.json": b"{}"})
    result = merge([*shards, escape], tmp_path / "m")
    assert result.refused and any("unsafe archive member 'c/../../evil'" in p for p in result.problems)
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_artifact_names_with_folders_are_refused(tmp_path: Path) -> None:
    # Intact by its digests, but its manifest lists a nested path: never written to the output.
    report = tmp_path / "in" / "a"
    report.mkdir(parents=True)
    (report / "sub").mkdir()
    (report / "sub" / "x").write_text("x")
    digest = hashlib.sha256(b"x").hexdigest()
    (report / MANIFEST).write_bytes(seal({"tool": "sddc-conformance", "verdict": "CONFORMANT",
                                          "artifacts": {"sub/x": {"sha256": digest}}}))
    result = merge([report], tmp_path / "m")
    assert result.refused and "not a plain file name" in result.problems[0]
    assert not (tmp_path / "m" / "a").exists()


def test_a_foreign_tool_is_refused(tmp_path: Path) -> None:
    report = fake_report(tmp_path / "in" / "a", "CONFORMANT", [])
    artifacts = {n: {"sha256": d} for n, d in artifact_digests(report, ARTIFACTS).items()}
    (report / MANIFEST).write_bytes(seal({"tool": "other", "verdict": "CONFORMANT", "artifacts": artifacts}))
    result = merge([report], tmp_path / "m")
    assert result.refused and "foreign: not a report of sddc-conformance" in result.problems[0]


def test_usage_errors(shards: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    code, _, err = run_cli(["fleet", "merge", str(shards[0]), "-o", str(tmp_path / "full")], capsys)
    assert code == 2 and "is not an empty directory" in err and err.count("\n") == 1
    code, _, err = run_cli(["fleet", "merge", str(tmp_path / "nope"), "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "does not exist" in err
    os.symlink(shards[0], tmp_path / "link")
    code, _, err = run_cli(["fleet", "merge", str(tmp_path / "link"), "-o", str(tmp_path / "m")], capsys)
    assert code == 2 and "is a symlink" in err
    with pytest.raises(ReportError, match="nothing to merge"):
        merge([_archive(tmp_path / "junk.tar.gz", {"x/y": b"1"})], tmp_path / "m2")
    assert not (tmp_path / "m").exists()


def test_merge_help_documents_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["fleet", "merge", "--help"], capsys)
    assert code == 0 and "Exit codes:" in out and "refused (tampered, foreign" in out and "never arrived" in out


# -- the rehearsal: real shards in their own working directories, merged, against one --targets run -------

def _targets_file(path: Path) -> Path:
    # Reference servers with different defects, judged by the schema profile (deterministic:
    # no race windows), and one unreachable target: six verdicts of three kinds.
    entries = [("clean", None), ("html-500", "html-500"), ("text-error", "plain-text-error"),
               ("no-error-body", "missing-error-body"), ("unknown-500", "unknown-id-500")]
    # One target at a time per process and a generous timeout: four processes share the machine
    # with other tests, and a slow answer must not turn into a different verdict.
    text = ('parallel = 1\n\n[defaults]\nprofile = "schema"\nmax-examples = 3\nseed = 7\nconcurrency = 4\n'
            'timeout = 30\n')
    for name, defect in entries:
        text += f'\n[[targets]]\nname = "{name}"\n' + (f'defect = ["{defect}"]\n' if defect else "")
    text += (f'\n[[targets]]\nname = "gone"\nbase-url = "http://127.0.0.1:{free_port()}"\n'
             'token = "unused"\ntimeout = 1\n')
    path.write_text(text, encoding="utf-8")
    return path


def _start(workdir: Path, *args: str) -> subprocess.Popen[str]:
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SDDC_")}
    return subprocess.Popen([sys.executable, "-P", "-m", "conformance", "run", *args], cwd=workdir, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_rehearsal_three_shards_merge_into_the_single_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = _targets_file(tmp_path / "targets.toml")
    # Three shard processes in working directories of their own, and the single-machine run, at once.
    processes = [_start(tmp_path / f"machine-{k}", "--targets", str(targets), "--shard", f"{k}/3",
                        "--report-dir", "shard", "-q") for k in (1, 2, 3)]
    processes.append(_start(tmp_path / "single", "--targets", str(targets), "--report-dir", "out", "-q"))
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [1, 1, 3, 3], outputs
    assert "checking 2 targets (shard 2/3 of 6)" in outputs[1]
    # The child's detail ("CONFORMANT, 1 MUST requirement not run: ..."), without the verdict it repeats.
    assert "[clean] CONFORMANT (exit 0): 1 MUST requirement not run" in outputs[0]

    shard_dirs = [str(tmp_path / f"machine-{k}" / "shard") for k in (1, 2, 3)]
    code, out, _ = run_cli(["fleet", "merge", *shard_dirs, "-o", str(tmp_path / "merged"), "-q"], capsys)
    single = summary(tmp_path / "single" / "out")
    merged = summary(tmp_path / "merged")
    assert code == 3 == json.loads((tmp_path / "single" / "out" / "fleet.json").read_text())["exit_code"]
    # Target by target: the same verdicts, exit codes and failed requirements, in the same order.
    assert merged == single
    assert merged["html-500"][:3] == ("NOT CONFORMANT", 1, ["SCH-ERROR-BODY", "SCH-ERROR-MEDIA", "SRV-NO-5XX"])
    assert merged["clean"][:2] == ("CONFORMANT", 0) and merged["gone"][:2] == ("NO VERDICT", 3)
    index = [line for line in (tmp_path / "merged" / "index.md").read_text().splitlines() if line.startswith("| ")]
    assert index == [line for line in (tmp_path / "single" / "out" / "index.md").read_text().splitlines()
                     if line.startswith("| ")]

    # A tampered shard report and a missing shard, on the real shards.
    (tmp_path / "machine-2" / "shard" / "html-500" / "findings.json").write_text("{}", encoding="utf-8")
    code, out, _ = run_cli(["fleet", "merge", shard_dirs[1], shard_dirs[2], "-o", str(tmp_path / "m2"), "-q"],
                           capsys)
    assert code == 1
    assert f"refused: {shard_dirs[1]}/html-500: does not match its manifest (changed: findings.json)" in out
    assert "missing: shard 1/3 never arrived: clean, no-error-body (NO VERDICT)" in out
