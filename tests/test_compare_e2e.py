"""compare and serve --like end to end: two correct targets that differ, a target against a
recording of itself, a recording against the reference server made like it.

Each run is small (--max-examples 3) against reference servers on 127.0.0.1; two recordings are
shared by the module's tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main
from conformance.reference import ReferenceConfig, ReferenceServer
from conformance.reference.like import like
from conformance.report.compare import BREAKS

PASSWORD = "compare-e2e-password"
COMMON = ["--max-examples", "3", "--seed", "5"]


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as ended:
        main(argv)
    return int(ended.value.code or 0)


def _credentials(server: ReferenceServer, where: Path) -> list[str]:
    """--base-url, user, password file and a task pool with fresh IN_PROGRESS tasks (a run uses them up)."""
    server.create_tasks("IN_PROGRESS", 8)
    where.mkdir(parents=True, exist_ok=True)
    (where / "tasks.json").write_text(json.dumps(server.state_document()["tasks"]), encoding="utf-8")
    (where / "password").write_text(PASSWORD, encoding="utf-8")
    return ["--base-url", server.base_url, "--username", server.config.username,
            "--password-file", str(where / "password"), "--tasks-file", str(where / "tasks.json")]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ReferenceServer]]:
    started = {
        "sync": ReferenceServer(ReferenceConfig(password=PASSWORD)),
        # Correct too: cancels settle after 1.5 s, and a servlet front answers URL-hostile ids.
        "async": ReferenceServer(ReferenceConfig(password=PASSWORD, settle_seconds=1.5, defects=frozenset(
            {"async-cancel-repeat-409", "servlet-url-hygiene"}))),
    }
    for server in started.values():
        server.start()
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture(scope="module")
def recordings(servers: dict[str, ReferenceServer], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recordings")
    out = {}
    for name, server in servers.items():
        reports = root / name / "reports"
        code = _exit(["run", *_credentials(server, root / name), *COMMON, "--report-dir", str(reports), "-q"])
        assert code == 0, f"the {name} target is correct"
        out[name] = reports
    return out


def _breaking(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    shown = json.loads(capsys.readouterr().out)
    return [d for d in shown["differences"] if d["kind"] == BREAKS]


@pytest.mark.slow
def test_two_correct_targets_differ_in_cancel_mode_and_url_layer_only(
        recordings: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = _exit(["compare", str(recordings["sync"]), str(recordings["async"]), "--format", "json"])
    breaking = _breaking(capsys)
    assert code == 1
    named = {d["behaviour"] for d in breaking}
    assert "cancel mode" in named
    hostile = named - {"cancel mode"}
    assert hostile and all(b.startswith("url-hostile: ") for b in hostile), named
    assert {"status", "media type"} <= set(next(iter(hostile)).split(": ")[-1].split(", "))
    mode = next(d for d in breaking if d["behaviour"] == "cancel mode")
    assert (mode["baseline"], mode["candidate"]) == ("synchronous", "asynchronous")


@pytest.mark.slow
def test_a_target_against_a_recording_of_itself_is_compatible(
        recordings: dict[str, Path], servers: dict[str, ReferenceServer], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = _exit(["compare", str(recordings["sync"]), *_credentials(servers["sync"], tmp_path),
                  "--report-dir", str(tmp_path / "live"), "--format", "json"])
    assert _breaking(capsys) == [] and code == 0
    assert (tmp_path / "live" / "profile.json").is_file()


@pytest.mark.slow
def test_a_recording_against_serve_like_of_it_is_compatible(
        recordings: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recorded = json.loads((recordings["async"] / "profile.json").read_text(encoding="utf-8"))
    likeness = like(recorded)
    assert {"async-cancel-repeat-409", "servlet-url-hygiene"} <= likeness.settings["defects"]
    with ReferenceServer(ReferenceConfig(password=PASSWORD, **likeness.settings)) as server:
        code = _exit(["compare", str(recordings["async"]), *_credentials(server, tmp_path),
                      "--report-dir", str(tmp_path / "live"), "--format", "json"])
    assert _breaking(capsys) == [] and code == 0


def test_recorded_profiles_follow_their_schema(recordings: dict[str, Path]) -> None:
    import jsonschema

    schema = json.loads((Path(__file__).parent.parent / "docs" / "profile.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    for directory in recordings.values():
        document: Any = json.loads((directory / "profile.json").read_text(encoding="utf-8"))
        jsonschema.validate(document, schema)
        assert PASSWORD not in (directory / "profile.json").read_text(encoding="utf-8")
