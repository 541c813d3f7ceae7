"""docs/ci/: the fleet recipes pass maintained validators, and a broken recipe fails them.

check-jsonschema validates the workflows against its vendored (offline) GitHub Actions and GitLab
CI schemas, kubernetes-validate the manifests against the Kubernetes API schemas (strict: no
unknown field), hadolint the Containerfile. Each validator is shown to bite on a broken copy.
The wiring the validators cannot see (the matrix and --shard agree, artifacts go up and come
down under the names the merge reads) is checked on the parsed YAML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

CI_DIR = REPO_ROOT / "docs" / "ci"
GITHUB = CI_DIR / "fleet-github-actions.yml"
GITLAB = CI_DIR / "fleet-gitlab-ci.yml"
SHARDS = CI_DIR / "kubernetes" / "fleet-shards.yaml"
MERGE = CI_DIR / "kubernetes" / "fleet-merge.yaml"
CONTAINERFILE = CI_DIR / "Containerfile"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    # The dev extras install these beside the interpreter; missing, the test fails (not skips):
    # CI must not pass a recipe it could not check.
    path = BIN / name
    assert path.exists() or shutil.which(name), f"{name} is missing: pip install -e '.[dev]'"
    return str(path) if path.exists() else str(shutil.which(name))


def validate(kind: str, path: Path) -> subprocess.CompletedProcess[str]:
    commands = {
        "github": [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        "gitlab": [_tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(path)],
        "kubernetes": [_tool("kubernetes-validate"), "--strict", "--quiet", str(path)],
        "container": [_tool("hadolint"), "--no-color", str(path)],
    }
    return subprocess.run(commands[kind], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    ("kind", "path"),
    [("github", GITHUB), ("github", CI_DIR / "github-actions.yml"), ("gitlab", GITLAB),
     ("gitlab", CI_DIR / "gitlab-ci.yml"), ("kubernetes", SHARDS), ("kubernetes", MERGE),
     ("container", CONTAINERFILE)],
)
def test_recipe_passes_its_validator(kind: str, path: Path) -> None:
    done = validate(kind, path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("kind", "path", "old", "new"),
    [
        ("github", GITHUB, "runs-on: ubuntu-latest\n    timeout-minutes: 60", "timeout-minutes: 60"),
        ("github", GITHUB, "        shard: [1, 2, 3]", "        - shard: [1, 2, 3]"),
        ("gitlab", GITLAB, "      - SHARD: [\"1\", \"2\", \"3\"]", "      SHARD: [\"1\", \"2\", \"3\"]"),
        ("gitlab", GITLAB, "  when: always               #", "  when: sometimes            #"),
        ("kubernetes", SHARDS, "  parallelism: 3", "  parallelism: three"),
        ("kubernetes", SHARDS, "  completions: 3", "  completion: 3"),
        ("kubernetes", MERGE, "backoffLimit: 0", "backoffLimit: none"),
        ("container", CONTAINERFILE, "FROM python:3.12-slim", "FROMM python:3.12-slim"),
    ],
)
def test_a_broken_recipe_fails_its_validator(tmp_path: Path, kind: str, path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, "the recipe changed: update this test's breakage"
    broken = tmp_path / path.name
    broken.write_text(text.replace(old, new), encoding="utf-8")
    assert validate(kind, broken).returncode != 0


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_github_matrix_runs_every_shard_and_the_merge_reads_them() -> None:
    workflow = _load(GITHUB)
    count = int(workflow["env"]["SHARD_COUNT"])
    shard_job, merge_job = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    assert shard_job["strategy"]["matrix"]["shard"] == list(range(1, count + 1))
    assert shard_job["strategy"]["fail-fast"] is False
    runs = " ".join(step.get("run", "") for step in shard_job["steps"])
    assert '--shard "${{ matrix.shard }}/$SHARD_COUNT"' in runs and '--report-dir "shard-${{ matrix.shard }}"' in runs
    upload = next(s for s in shard_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "conformance-shard-${{ matrix.shard }}" and "!cancelled()" in upload["if"]
    assert merge_job["needs"] == "shard" and "!cancelled()" in merge_job["if"]
    download = next(s for s in merge_job["steps"] if s.get("uses", "").startswith("actions/download-artifact@"))
    assert download["with"] == {"pattern": "conformance-shard-*", "path": "shards"}
    gate = [s for s in merge_job["steps"] if "fleet merge" in s.get("run", "")]
    assert [s["run"] for s in gate] == ["sddc-conformance fleet merge shards -o fleet"]
    assert "continue-on-error" not in gate[0]


def test_gitlab_parallel_matrix_and_merge() -> None:
    pipeline = _load(GITLAB)
    count = int(pipeline["variables"]["SHARD_COUNT"])
    shard, merge = pipeline["conformance-shard"], pipeline["conformance-merge"]
    assert shard["parallel"]["matrix"] == [{"SHARD": [str(k) for k in range(1, count + 1)]}]
    assert '--shard "$SHARD/$SHARD_COUNT" --report-dir "shards/shard-$SHARD"' in shard["script"][0]
    assert shard["artifacts"]["when"] == "always" and shard["artifacts"]["paths"] == ["shards/"]
    assert merge["needs"] == [{"job": "conformance-shard", "artifacts": True}] and merge["when"] == "always"
    assert merge["script"] == ["sddc-conformance fleet merge shards -o fleet"]
    assert "allow_failure" not in merge


def test_kubernetes_indexed_job_maps_the_completion_index_to_the_shard() -> None:
    documents = list(yaml.safe_load_all(SHARDS.read_text(encoding="utf-8")))
    job = next(d for d in documents if d["kind"] == "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SHARD_COUNT"]) == spec["completions"] == spec["parallelism"]
    script = container["args"][0]
    # JOB_COMPLETION_INDEX counts from 0, --shard from 1.
    assert 'shard="$((JOB_COMPLETION_INDEX + 1))/$SHARD_COUNT"' in script and '--shard "$shard"' in script
    assert '--report-dir "/reports/$RUN_ID/shard-$((JOB_COMPLETION_INDEX + 1))"' in script
    configmap = next(d for d in documents if d["kind"] == "ConfigMap")
    assert "targets.toml" in configmap["data"] and "${SDDC_TOKEN_BUILD_A}" in configmap["data"]["targets.toml"]
    merge = yaml.safe_load(MERGE.read_text(encoding="utf-8"))
    merge_container = merge["spec"]["template"]["spec"]["containers"][0]
    assert merge_container["args"] == ["fleet", "merge", f"/reports/{env['RUN_ID']}", "-o",
                                       f"/reports/{env['RUN_ID']}/fleet"]
    assert merge_container["image"] == container["image"]
    claims = {v["persistentVolumeClaim"]["claimName"] for d in (job, merge)
              for v in d["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"sddc-fleet-reports"}


def test_the_targets_file_of_the_kubernetes_recipe_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.cli.fleet import load_fleet

    documents = list(yaml.safe_load_all(SHARDS.read_text(encoding="utf-8")))
    configmap = next(d for d in documents if d["kind"] == "ConfigMap")
    (tmp_path / "targets.toml").write_text(configmap["data"]["targets.toml"], encoding="utf-8")
    monkeypatch.setenv("SDDC_TOKEN_BUILD_A", "a")
    monkeypatch.setenv("SDDC_TOKEN_BUILD_B", "b")
    assert [t.name for t in load_fleet(tmp_path / "targets.toml").targets] == ["build-a", "build-b", "reference"]


def test_containerfile_installs_the_suite_as_its_entry_point() -> None:
    text = CONTAINERFILE.read_text(encoding="utf-8")
    assert re.search(r"^USER 10001$", text, re.M) and 'ENTRYPOINT ["sddc-conformance"]' in text
    # What the wheel build needs (pyproject's packages and force-include) is copied in.
    for needed in ("pyproject.toml", "conformance", "benchmarks", "openapi"):
        assert re.search(rf"^COPY .*\b{needed}\b", text, re.M), needed
