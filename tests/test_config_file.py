"""sddc-conformance.toml / [tool.sddc-conformance]: keys, interpolation, precedence, init."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conformance.cli import cli, main
from conformance.config import file as config_file
from conformance.config.file import KEYS, ConfigError, load, load_for_run, starter_text, validate_table

SECRETS = ("SDDC_TOKEN", "SDDC_PASSWORD", "SDDC_BASE_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `run` hands to run_command, without running the suite."""
    seen: dict[str, Any] = {}

    def fake_run_command(**params: Any) -> int:
        seen.update(params)
        # The password is read where the options are built (one place for every route in).
        from conformance.options import read_password

        seen["password"] = read_password(params.get("password_file"), os.environ)
        return 0

    monkeypatch.setattr("conformance.cli.run.run_command", fake_run_command)
    return seen


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(cli, ["run", *args], env=env, catch_exceptions=False)
    return result


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# -- precedence: command line > environment > file > defaults ------------------------------------------

def test_file_values_reach_the_run_as_defaults(tmp_path: Path, captured: dict[str, Any]) -> None:
    write(tmp_path / "sddc-conformance.toml",
          'base-url = "http://127.0.0.1:9"\nmax-examples = 12\nprofile = "schema"\ntimeout = 3\n'
          'task = ["IN_PROGRESS=abc"]\ndiscover = true\ntasks-file = "state.json"\n')
    invoke([])
    assert captured["base_url"] == "http://127.0.0.1:9"
    assert captured["max_examples"] == 12
    assert captured["profile"] == "schema"
    assert captured["timeout"] == 3.0
    assert captured["task_options"] == ("IN_PROGRESS=abc",)
    assert captured["discover"] is True
    # Relative paths are relative to the file, not to wherever the command happens to run.
    assert captured["tasks_file"] == str(tmp_path / "state.json")


def test_nothing_given_keeps_the_built_in_defaults(captured: dict[str, Any]) -> None:
    invoke([])
    assert captured["base_url"] is None
    assert captured["max_examples"] is None  # run_command turns None into DEFAULT_MAX_EXAMPLES
    assert captured["profile"] == "full"
    assert captured["timeout"] == 10.0


@pytest.mark.parametrize(
    ("cli_args", "env", "expected"),
    [
        ([], {}, "from-file"),
        ([], {"SDDC_TOKEN": "from-env"}, "from-env"),
        (["--token", "from-cli"], {"SDDC_TOKEN": "from-env"}, "from-cli"),
        (["--token", "from-cli"], {}, "from-cli"),
    ],
)
def test_token_precedence(tmp_path: Path, captured: dict[str, Any], cli_args: list[str], env: dict[str, str],
                          expected: str) -> None:
    write(tmp_path / "sddc-conformance.toml", 'token = "from-file"\nbase-url = "http://127.0.0.1:9"\n')
    invoke(cli_args, env)
    assert captured["token"] == expected


@pytest.mark.parametrize(
    ("cli_args", "env", "expected"),
    [
        ([], {}, "http://file.invalid"),
        ([], {"SDDC_BASE_URL": "http://env.invalid"}, "http://env.invalid"),
        (["--base-url", "http://cli.invalid"], {"SDDC_BASE_URL": "http://env.invalid"}, "http://cli.invalid"),
    ],
)
def test_base_url_precedence(tmp_path: Path, captured: dict[str, Any], cli_args: list[str], env: dict[str, str],
                             expected: str) -> None:
    write(tmp_path / "sddc-conformance.toml", 'base-url = "http://file.invalid"\n')
    invoke(cli_args, env)
    assert captured["base_url"] == expected


def test_option_on_the_command_line_beats_the_file(tmp_path: Path, captured: dict[str, Any]) -> None:
    write(tmp_path / "sddc-conformance.toml", 'max-examples = 12\nprofile = "schema"\nstrict = true\n')
    invoke(["--max-examples", "3", "--profile", "behavior"])
    assert (captured["max_examples"], captured["profile"], captured["strict"]) == (3, "behavior", True)


@pytest.mark.parametrize(
    ("cli_file", "env_password", "expected"),
    [
        (False, None, "file-in-config"),  # the config's password-file is used
        (False, "from-env", "from-env"),  # environment beats the config file
        (True, "from-env", "file-on-cli"),  # the command line beats the environment
    ],
)
def test_password_precedence(tmp_path: Path, captured: dict[str, Any], cli_file: bool, env_password: str | None,
                             expected: str) -> None:
    write(tmp_path / "in-config.txt", "file-in-config\n")
    write(tmp_path / "on-cli.txt", "file-on-cli\n")
    write(tmp_path / "sddc-conformance.toml", 'username = "admin"\npassword-file = "in-config.txt"\n')
    env = {"SDDC_PASSWORD": env_password} if env_password else {}
    invoke(["--password-file", str(tmp_path / "on-cli.txt")] if cli_file else [], env)
    assert captured["password"] == expected


def test_explicit_config_beats_the_current_directory(tmp_path: Path, captured: dict[str, Any]) -> None:
    write(tmp_path / "sddc-conformance.toml", "max-examples = 12\n")
    other = tmp_path / "elsewhere"
    other.mkdir()
    write(other / "ci.toml", 'max-examples = 7\nreport-dir = "out"\n')
    invoke(["--config", str(other / "ci.toml")])
    assert captured["max_examples"] == 7
    assert captured["report_dir"] == str(other / "out")


def test_pyproject_section_is_used_when_there_is_no_toml_file(tmp_path: Path, captured: dict[str, Any]) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.sddc-conformance]\nmax-examples = 9\n')
    invoke([])
    assert captured["max_examples"] == 9


def test_sddc_conformance_toml_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.sddc-conformance]\nmax-examples = 9\n")
    write(tmp_path / "sddc-conformance.toml", "max-examples = 4\n")
    loaded = load_for_run(None, cwd=tmp_path)
    assert loaded is not None and loaded.values == {"max-examples": 4}


def test_pyproject_without_the_section_or_broken_is_ignored(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert load_for_run(None, cwd=tmp_path) is None
    write(tmp_path / "pyproject.toml", "[project\n")
    assert load_for_run(None, cwd=tmp_path) is None


def test_pyproject_errors_name_the_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "pyproject.toml", "[tool.sddc-conformance]\nseed = -1\n")
    line = error_of(["run"], capsys)
    assert "pyproject.toml [tool.sddc-conformance]: 'seed' must be a whole number of at least 0, got -1" in line


# -- interpolation ------------------------------------------------------------------------------------

def test_environment_variables_are_interpolated(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'token = "${MY_TOKEN}"\nusername = "ad$$min-${WHO}"\n')
    loaded = load(path, environ={"MY_TOKEN": "s3cret", "WHO": "qa"})
    assert loaded.values == {"token": "s3cret", "username": "ad$min-qa"}


def test_interpolation_in_lists(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'task = ["IN_PROGRESS=${TASK}"]\n')
    assert load(path, environ={"TASK": "t-1"}).values == {"task": ["IN_PROGRESS=t-1"]}


def test_missing_variable_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", 'token = "${SDDC_CI_TOKEN_UNSET}"\n')
    line = error_of(["run"], capsys)
    assert line == ("sddc-conformance: error: sddc-conformance.toml: 'token' uses ${SDDC_CI_TOKEN_UNSET} "
                    "but environment variable SDDC_CI_TOKEN_UNSET is not set")


def test_interpolated_secret_never_appears_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'timeout = "${T}"\n')
    with pytest.raises(ConfigError) as info:
        load(path, environ={"T": "hunter2"})
    # The message shows what the file says, not what the variable holds.
    assert "hunter2" not in str(info.value) and "${T}" in str(info.value)


# -- bad files ----------------------------------------------------------------------------------------

def test_unknown_key_suggests_the_close_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", "max-exmples = 3\n")
    line = error_of(["run"], capsys)
    assert line == ("sddc-conformance: error: sddc-conformance.toml: unknown key 'max-exmples' "
                    "(did you mean 'max-examples'?)")


def test_underscored_key_suggests_the_dashed_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'max_requests' \(did you mean 'max-requests'\?\)"):
        validate_table({"max_requests": 3}, "f", base_dir=tmp_path)


def test_bad_value_names_the_key_and_the_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", 'timeout = "ten"\n')
    line = error_of(["run"], capsys)
    assert line == "sddc-conformance: error: sddc-conformance.toml: 'timeout' must be a positive number, got \"ten\""


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("max-examples", 0, "'max-examples' must be a whole number of at least 1, got 0"),
        ("max-examples", True, "'max-examples' must be a whole number of at least 1, got true"),
        ("rate-limit", -1, "'rate-limit' must be a positive number, got -1"),
        ("discover", "yes", "'discover' must be true or false, got \"yes\""),
        ("profile", "fast", "'profile' must be one of schema, behavior, full, got \"fast\""),
        ("task", [1], "'task' must be a list of non-empty strings, got [1]"),
        ("base-url", "", "'base-url' must be a non-empty string, got \"\""),
    ],
)
def test_bad_values(tmp_path: Path, key: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_table({key: value}, "sddc-conformance.toml", base_dir=tmp_path)
    assert str(info.value) == f"sddc-conformance.toml: {expected}"


def test_a_literal_password_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", 'password = "hunter2"\n')
    line = error_of(["run"], capsys)
    assert "key 'password' is not accepted" in line and "SDDC_PASSWORD" in line and "hunter2" not in line


def test_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", "max-examples = \n")
    assert "sddc-conformance.toml: not valid TOML" in error_of(["run"], capsys)


def test_missing_explicit_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--config nope.toml: no such file" in error_of(["run", "--config", "nope.toml"], capsys)


# -- keys mirror the run command -----------------------------------------------------------------------

def test_every_key_is_a_run_option_with_the_same_name() -> None:
    run = cli.get_command(click.Context(cli), "run")
    assert run is not None
    flags = {opt.lstrip("-"): p.name for p in run.params for opt in p.opts if opt.startswith("--")}
    for name, key in KEYS.items():
        assert flags.get(name) == key.param, name
    # ...and every run option but those that choose files or a machine's slice has a key: a new run
    # flag needs one. --shard differs per machine of one fleet, so a shared file cannot hold it.
    missing = set(flags) - set(KEYS) - {"config", "targets", "shard"}
    assert not missing, f"run flags without a key in config_file.KEYS: {sorted(missing)}"


# -- init ---------------------------------------------------------------------------------------------

def test_init_writes_a_starter_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["init"])
    assert exit_info.value.code == 0
    written = tmp_path / "sddc-conformance.toml"
    assert written.read_text(encoding="utf-8") == starter_text()
    assert load(written).values == {}


def test_init_starter_documents_every_key_with_a_valid_example(tmp_path: Path) -> None:
    # Uncommenting any example line must give a valid file: the starter cannot drift from the keys.
    examples = re.findall(r"^# ([a-z-]+) = (.+)$", starter_text(), flags=re.MULTILINE)
    assert [name for name, _ in examples] == list(KEYS)
    for name, value in examples:
        path = write(tmp_path / "one.toml", f"{name} = {value}\n")
        load(path, environ={"SDDC_TOKEN": "t"})


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml", "max-examples = 3\n")
    line = error_of(["init"], capsys)
    assert "already exists; use --force" in line
    assert (tmp_path / "sddc-conformance.toml").read_text(encoding="utf-8") == "max-examples = 3\n"
    with pytest.raises(SystemExit) as exit_info:
        main(["init", "--force"])
    assert exit_info.value.code == 0
    assert (tmp_path / "sddc-conformance.toml").read_text(encoding="utf-8") == config_file.starter_text()


# -- one real run driven by a file ---------------------------------------------------------------------

def test_a_run_configured_by_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "sddc-conformance.toml",
          'profile = "schema"\nmax-examples = 10\nseed = 4\nquiet = true\nreport-dir = "reports/cfg"\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("CONFORMANT")
    findings = json.loads((tmp_path / "reports" / "cfg" / "findings.json").read_text(encoding="utf-8"))
    assert (findings["profile"], findings["max_examples"], findings["seed"]) == ("schema", 10, 4)
