"""`sddc-conformance spec diff`: the drift table, its three formats and its exit codes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.cli import main
from conformance.cli.spec import SPEC_DIFF_EXIT_CODES
from conformance.outcome import ExitCode
from conformance.spec import fragment_path

VENDOR_DOCUMENT = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "vcf-api-9.0.2.0.json"
FORMATS = ("text", "json", "markdown")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def seed() -> dict[str, Any]:
    return dict(yaml.safe_load(fragment_path().read_text(encoding="utf-8")))


def op(document: dict[str, Any]) -> dict[str, Any]:
    return dict(document["paths"]["/v1/tasks/{id}"]["delete"])


def write(tmp_path: Path, document: Any, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sddc-conformance: error: ")
    return lines[0]


# -- synthetic drifts: each is exit 1 with its path in every format ---------------------------------


def _remove_409(d: dict[str, Any]) -> None:
    del d["paths"]["/v1/tasks/{id}"]["delete"]["responses"]["409"]


def _add_202(d: dict[str, Any]) -> None:
    d["paths"]["/v1/tasks/{id}"]["delete"]["responses"]["202"] = {"description": "Accepted"}


def _retype_deep_message(d: dict[str, Any]) -> None:
    schemas = d["components"]["schemas"]
    cause = copy.deepcopy(schemas["ErrorCause"])
    cause["properties"]["message"] = {"type": "integer"}
    level2 = copy.deepcopy(schemas["Error"])
    level2["properties"]["causes"]["items"] = cause
    level1 = copy.deepcopy(schemas["Error"])
    level1["properties"]["nestedErrors"]["items"] = level2
    schemas["Error"]["properties"]["nestedErrors"]["items"] = level1


def _json_media(d: dict[str, Any]) -> None:
    responses = d["paths"]["/v1/tasks/{id}"]["delete"]["responses"]
    responses["404"]["content"] = {"application/json": responses["404"]["content"]["*/*"]}


def _required_field(d: dict[str, Any]) -> None:
    error = d["components"]["schemas"]["Error"]
    error["properties"]["tenant"] = {"type": "string"}
    error["required"] = ["tenant"]


# name -> (edit, path shown, tolerated)
DRIFTS: dict[str, tuple[Callable[[dict[str, Any]], None], str, bool]] = {
    "removed 409": (_remove_409, "responses/409", False),
    "added 202": (_add_202, "responses/202", False),
    "message retyped three levels down": (
        _retype_deep_message, "Error.nestedErrors[].nestedErrors[].causes[].message", False,
    ),
    "application/json replacing */*": (_json_media, "responses/404/content", True),
    "added required field": (_required_field, "Error.tenant", False),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", DRIFTS)
def test_each_drift_exits_1_and_shows_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, fmt: str
) -> None:
    edit, path, tolerated = DRIFTS[name]
    document = seed()
    edit(document)
    code, out, err = run_cli(["spec", "diff", str(write(tmp_path, document)), "--format", fmt], capsys)
    assert code == ExitCode.NOT_CONFORMANT, err
    assert err == ""
    if fmt == "json":
        payload = json.loads(out)
        assert [(d["path"], d["tolerated"]) for d in payload["drifts"]] == [(path, tolerated)]
        assert payload["breaking"] == (0 if tolerated else 1)
    elif fmt == "markdown":
        # Markdown escapes [ ] and _ in cells.
        escaped = path.replace("[", "\\[").replace("]", "\\]")
        assert escaped in out
        assert ("✅ tolerated" if tolerated else "❌ **changes verdict**") in out
    else:
        (row,) = [line for line in out.splitlines() if path in line.split()]
        assert row.startswith("tolerated" if tolerated else "CHANGES VERDICT")


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_drift_exits_0(capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    code, out, _ = run_cli(["spec", "diff", str(fragment_path()), "--format", fmt], capsys)
    assert code == ExitCode.OK
    assert "no drift" in out.lower() or json.loads(out)["drifts"] == []


def test_against_compares_two_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = seed(), seed()
    _remove_409(old)
    _remove_409(new)
    _add_202(new)
    code, out, _ = run_cli(["spec", "diff", str(write(tmp_path, new, "new.json")),
                            "--against", str(write(tmp_path, old, "old.json")), "--format", "json"], capsys)
    # 409 is missing from both: only the added 202 is a drift between them.
    assert code == ExitCode.NOT_CONFORMANT
    assert [d["path"] for d in json.loads(out)["drifts"]] == ["responses/202"]
    code, _, _ = run_cli(["spec", "diff", str(write(tmp_path, old, "same.json")),
                          "--against", str(tmp_path / "old.json")], capsys)
    assert code == ExitCode.OK


# -- documents that cannot be compared: exit 2, one line --------------------------------------------


def _no_operation(tmp_path: Path) -> Path:
    document = seed()
    document["paths"] = {"/v1/tasks": {"get": {"responses": {"200": {"description": "ok"}}}}}
    return write(tmp_path, document)


UNUSABLE: dict[str, Callable[[Path], Path]] = {
    "missing file": lambda tmp: tmp / "absent.json",
    "not JSON or YAML": lambda tmp: (tmp / "bad.json").write_text("{ nope: [", encoding="utf-8") and tmp / "bad.json",
    "not OpenAPI": lambda tmp: write(tmp, {"hello": "world"}),
    "no cancel operation": _no_operation,
    "control characters in the name": lambda tmp: tmp / "evil\x1b[31m.json",
}


@pytest.mark.parametrize("name", UNUSABLE)
@pytest.mark.parametrize("position", ["file", "against"])
def test_unusable_document_is_exit_2_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, position: str
) -> None:
    bad = str(UNUSABLE[name](tmp_path))
    argv = ["spec", "diff", bad] if position == "file" else ["spec", "diff", str(fragment_path()), "--against", bad]
    code, out, err = run_cli(argv, capsys)
    assert code == ExitCode.USAGE_ERROR
    assert out == ""
    line = one_line_error(err)
    assert "\x1b" not in line


def test_help_documents_the_exit_codes_of_spec_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["spec", "diff", "--help"], capsys)
    assert code == ExitCode.OK
    text = " ".join(out.split())
    assert "0 no drift" in text
    assert "1 drift: at least one difference, even when every one is tolerated" in text
    assert "2 a document is unreadable" in text
    assert " ".join(SPEC_DIFF_EXIT_CODES.split()[3:6]) in text


# -- VMware's own document --------------------------------------------------------------------------

VENDOR_ROWS = {
    ("responses/404/content", "*/*", "application/json"),
    ("responses/409/content", "*/*", "application/json"),
    ("responses/500/content", "*/*", "application/json"),
    ("Error.label", "-", "string"),
    ("Error.remediationUrl", "-", "string"),
    ("Error.context/additionalProperties", "any", "string"),
}


@pytest.fixture(scope="module")
def vendor_path() -> Path:
    if not VENDOR_DOCUMENT.is_file():
        pytest.skip(f"VMware's VCF API 9.0.2.0 document is not at {VENDOR_DOCUMENT} (not shipped with the suite)")
    return VENDOR_DOCUMENT


def test_vendor_document_prints_its_six_tolerated_drifts_and_exits_1(
    vendor_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["spec", "diff", str(vendor_path)], capsys)
    assert code == ExitCode.NOT_CONFORMANT, err
    lines = out.splitlines()
    assert lines[0].endswith("-> VMware Cloud Foundation API Reference Guide 9.0.2.0")
    rows = {tuple(line.split()[2:5]) for line in lines[2:-1]}
    assert rows == VENDOR_ROWS
    assert all(line.startswith("tolerated ") for line in lines[2:-1])
    assert lines[-1] == "6 drift(s): 0 would change a verdict, 6 tolerated"


def test_vendor_document_as_json_and_markdown(vendor_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["spec", "diff", str(vendor_path), "--format", "json"], capsys)
    assert code == ExitCode.NOT_CONFORMANT
    payload = json.loads(out)
    assert (payload["breaking"], payload["tolerated"]) == (0, 6)
    assert payload["new"]["version"] == "9.0.2.0"
    assert {(d["path"], d["old"] or "-", d["new"]) for d in payload["drifts"]} == VENDOR_ROWS
    code, out, _ = run_cli(["spec", "diff", str(vendor_path), "--format", "markdown"], capsys)
    assert code == ExitCode.NOT_CONFORMANT
    assert out.count("✅ tolerated") == 6 and "changes verdict" not in out
