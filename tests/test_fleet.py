"""`run --targets FILE`: several reference servers side by side, per-target reports, index, exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from conformance import requirements
from conformance.cli import main
from conformance.cli.fleet import (
    Fleet,
    TargetEntry,
    child_config,
    child_environment,
    load_fleet,
    plan_options,
    worst_exit,
)
from conformance.config.file import ConfigError
from conformance.report.fleet_index import TargetRun, render_html, render_markdown
from tests.conftest import TEST_PASSWORD, free_port

REPORT_FILES = {"junit.xml", "findings.json", "report.html", "summary.md", "manifest.json"}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def state_file(server: Any, path: Path) -> Path:
    path.write_text(json.dumps(server.state_document()), encoding="utf-8")
    return path


def token_for(server: Any) -> str:
    answer = requests.post(f"{server.base_url}/v1/tokens", timeout=5,
                           json={"username": server.config.username, "password": TEST_PASSWORD})
    answer.raise_for_status()
    return str(answer.json()["accessToken"])


@pytest.fixture
def fleet_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SDDC_TOKEN", "SDDC_PASSWORD", "SDDC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "password.txt").write_text(TEST_PASSWORD + "\n", encoding="utf-8")
    return tmp_path


@pytest.mark.slow
def test_three_targets_one_defective_one_unreachable(
    fleet_dir: Path, reference_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean = reference_server()
    # A wide window: three runs share this process with their servers, and under load the
    # concurrent cancels may arrive further apart than the default 0.05 s.
    racy = reference_server("racing-cancels", race_window=0.5)
    monkeypatch.setenv("RACY_TOKEN", token_for(racy))
    (fleet_dir / "targets.toml").write_text(f"""
parallel = 3

[defaults]
max-examples = 200
seed = 1

[[targets]]
name = "clean"
base-url = "{clean.base_url}"
username = "{clean.config.username}"
password-file = "password.txt"
tasks-file = "{state_file(clean, fleet_dir / 'clean.json').name}"

[[targets]]
name = "racy"
base-url = "{racy.base_url}"
token = "${{RACY_TOKEN}}"
tasks-file = "{state_file(racy, fleet_dir / 'racy.json').name}"
seed = 5

[[targets]]
name = "gone"
base-url = "http://127.0.0.1:{free_port()}"
token = "unused"
timeout = 1
""", encoding="utf-8")
    code, out, _ = run_cli(["run", "--targets", "targets.toml", "--report-dir", "out", "--max-examples", "10",
                            "--quiet"], capsys)
    # Worst of the three: unreachable (3) beats not conformant (1) beats conformant (0).
    assert code == 3
    assert "[clean] CONFORMANT (exit 0)" in out
    assert "[racy] NOT CONFORMANT (exit 1)" in out
    assert "[gone] NO VERDICT (exit 3)" in out
    out_dir = fleet_dir / "out"
    for name in ("clean", "racy"):
        assert {p.name for p in (out_dir / name).iterdir()} >= REPORT_FILES, name
        document = json.loads((out_dir / name / "findings.json").read_text(encoding="utf-8"))
        # Command line beats the target, the target beats the file's defaults.
        assert document["max_examples"] == 10
        assert document["seed"] == (5 if name == "racy" else 1)
    # The children's reports are exactly theirs: nothing of the fleet slipped into the manifests.
    assert run_cli(["verify", str(out_dir / "racy")], capsys)[0] == 0

    index_md = (out_dir / "index.md").read_text(encoding="utf-8")
    assert "| requirement | severity | clean | racy | gone |" in index_md
    assert "| BEH-RACE | MUST | PASS | FAIL |" in index_md
    assert "| **verdict** | | **CONFORMANT** | **NOT CONFORMANT** | **NO VERDICT** |" in index_md
    rows = [line for line in index_md.splitlines() if line.startswith("| ") and "-" in line.split("|")[1]]
    assert [row.split("|")[1].strip() for row in rows] == [r.id for r in requirements.catalogue()]
    index_html = (out_dir / "index.html").read_text(encoding="utf-8")
    assert '<a href="racy/report.html">racy</a>' in index_html
    # Self-contained: no script, nothing fetched from elsewhere.
    assert "<script" not in index_html and 'src="' not in index_html and 'href="http' not in index_html


@pytest.mark.slow
def test_json_targets_file_exit_1_and_embedded_targets(fleet_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A `conformance` directory where the fleet runs is not the suite: each target's process, and
    # its helper processes, start with python -P.
    (fleet_dir / "conformance").mkdir()
    (fleet_dir / "conformance" / "__init__.py").write_text("raise ImportError('the shadow package ran')\n")
    (fleet_dir / "fleet.json").write_text(json.dumps([
        {"name": "mock", "profile": "behavior"},
        {"name": "mock-racy", "profile": "behavior", "defect": ["racing-cancels"]},
    ]), encoding="utf-8")
    code, out, _ = run_cli(["run", "--targets", "fleet.json", "--report-dir", "o", "--seed", "2"], capsys)
    assert code == 1
    assert "| BEH-RACE | MUST | PASS | FAIL |" in out  # the markdown index is printed too
    assert "| SCH-STATUS | MUST | SKIPPED | SKIPPED |" in out
    assert (fleet_dir / "o" / "mock-racy" / "junit.xml").is_file()
    # The machine-readable fleet summary, as `fleet merge` writes it too.
    summary = json.loads((fleet_dir / "o" / "fleet.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == 1 and summary["problems"] == []
    assert [(t["name"], t["status"], t["exit_code"], "BEH-RACE" in t["failed"]) for t in summary["targets"]] == [
        ("mock", "CONFORMANT", 0, False), ("mock-racy", "NOT CONFORMANT", 1, True)]
    assert not (fleet_dir / "o" / "shard.json").exists()  # only a shard leaves a shard record


# -- bad files and options: exit 2, nothing run ---------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[targets]]\nname = 'a'\nmax-exmples = 3\n",
         "target 'a': unknown key 'max-exmples' (did you mean 'max-examples'?)"),
        ("[[targets]]\nname = 'a b'\n", "target 'a b': 'name' must be a name of letters"),
        ("[[targets]]\nname = 'a'\n[[targets]]\nname = 'a'\n", "two targets are named 'a'"),
        ("[[targets]]\nbase-url = 'http://x'\n", "targets[0] needs a 'name'"),
        ("targets = []\n", "'targets' must be a non-empty list"),
        ("[[targets]]\nname = 'a'\nreport-dir = 'x'\n", "'report-dir' is set by the fleet"),
        ("[[targets]]\nname = 'a'\ntoken = '${FLEET_UNSET_TOKEN}'\n",
         "environment variable FLEET_UNSET_TOKEN is not set"),
        ("[[targets]]\nname = 'a'\npassword = 'x'\n", "key 'password' is not accepted"),
        ("parallel = 0\n[[targets]]\nname = 'a'\n", "'parallel' must be a whole number between 1 and 32"),
        ("[defaults]\nbase-url = 'http://x'\n[[targets]]\nname = 'a'\n", "'base-url' belongs to each target"),
        ("colour = 1\n[[targets]]\nname = 'a'\n", "unknown top-level key 'colour'"),
    ],
)
def test_bad_targets_file(fleet_dir: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    (fleet_dir / "t.toml").write_text(text, encoding="utf-8")
    code, _, err = run_cli(["run", "--targets", "t.toml", "--report-dir", "o"], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not (fleet_dir / "o").exists()


def test_bad_json_targets_file(fleet_dir: Path) -> None:
    (fleet_dir / "t.json").write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_fleet(fleet_dir / "t.json")


def test_per_target_option_on_the_command_line_is_refused(fleet_dir: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (fleet_dir / "t.toml").write_text("[[targets]]\nname = 'a'\n", encoding="utf-8")
    code, _, err = run_cli(["run", "--targets", "t.toml", "--base-url", "http://127.0.0.1:9"], capsys)
    assert code == 2 and "--base-url is per target with --targets" in err


# -- pieces -----------------------------------------------------------------------------------------------

def test_worst_exit_order() -> None:
    assert worst_exit([0, 1, 0]) == 1
    assert worst_exit([1, 3, 0]) == 3
    assert worst_exit([3, 2, 1]) == 2
    assert worst_exit([2, 4]) == 4
    assert worst_exit([]) == 0


def test_precedence_of_layers(tmp_path: Path) -> None:
    fleet = Fleet((TargetEntry("a", {"seed": 3, "timeout": 2.0}), TargetEntry("b", {})), {"seed": 1, "strict": True})
    plan = plan_options(fleet, {"seed": 0, "profile": "schema"}, {"timeout": 9.0})
    assert plan["a"] == {"seed": 3, "profile": "schema", "strict": True, "timeout": 9.0}
    assert plan["b"] == {"seed": 1, "profile": "schema", "strict": True, "timeout": 9.0}


def test_child_config_keeps_secrets_out_and_dollars_literal() -> None:
    text = child_config({"username": "ad$min", "task": ["IN_PROGRESS=x"], "strict": True, "timeout": 2.5})
    assert text == 'username = "ad$$min"\ntask = ["IN_PROGRESS=x"]\nstrict = true\ntimeout = 2.5\n'
    env = child_environment({"token": "t0k", "password-file": "/p"},
                            {"SDDC_PASSWORD": "global", "SDDC_BASE_URL": "http://x", "PATH": "/bin"})
    assert env["SDDC_TOKEN"] == "t0k" and "SDDC_PASSWORD" not in env and "SDDC_BASE_URL" not in env
    assert child_environment({}, {"SDDC_PASSWORD": "global"})["SDDC_PASSWORD"] == "global"


def test_index_escapes_hostile_names_and_urls(tmp_path: Path) -> None:
    target_dir = tmp_path / "x"
    target_dir.mkdir()
    (target_dir / "findings.json").write_text(json.dumps({
        "target": {"url": "http://h/<script>alert(1)</script>|x"},
        "requirements": [{"id": "BEH-RACE", "outcome": "FAIL"}],
    }), encoding="utf-8")
    runs = [TargetRun("x", 1, target_dir, ""), TargetRun("missing", 3, tmp_path / "missing", "")]
    page = render_html(runs, requirements.catalogue())
    assert "<script>" not in page and "&lt;script&gt;" in page
    # The unreachable target (exit 3) has no verdict: amber, not painted as a failure.
    assert '<td class="NOT-RUN"><strong>NO VERDICT</strong></td>' in page
    assert '<td class="FAIL"><strong>NOT CONFORMANT</strong></td>' in page
    markdown = render_markdown(runs, requirements.catalogue())
    assert "\\|x" in markdown and "| BEH-RACE | MUST | FAIL | NO REPORT |" in markdown
