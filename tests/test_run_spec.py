"""`run --spec FILE`: another document's Cancel Task is the contract the checks read and the reports name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Reply, StubServer

from conformance.cli import main
from conformance.outcome import ExitCode
from conformance.spec import fragment_path, load_fragment

VENDOR_DOCUMENT = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "vcf-api-9.0.2.0.json"
FAST = ["--max-examples", "10", "--profile", "schema", "--seed", "1", "-q"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def seed() -> dict[str, Any]:
    return dict(yaml.safe_load(fragment_path().read_text(encoding="utf-8")))


def write(tmp_path: Path, document: Any, name: str = "doc.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def requirement(findings: dict[str, Any], requirement_id: str) -> dict[str, Any]:
    return next(r for r in findings["requirements"] if r["id"] == requirement_id)


@pytest.fixture(scope="module")
def vendor_path() -> Path:
    if not VENDOR_DOCUMENT.is_file():
        pytest.skip(f"VMware's VCF API 9.0.2.0 document is not at {VENDOR_DOCUMENT} (not shipped with the suite)")
    return VENDOR_DOCUMENT


def test_run_against_the_vendor_document_names_it_in_every_report(
    vendor_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "r"
    code, out, err = run_cli(["run", "--spec", str(vendor_path), "--report-dir", str(reports), *FAST], capsys)
    assert code == ExitCode.OK, out + err
    assert out.startswith("CONFORMANT")
    expected = {"title": "VMware Cloud Foundation API Reference Guide", "version": "9.0.2.0",
                "sha256": sha256(vendor_path), "source": vendor_path.name}
    manifest = json.loads((reports / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["contract"] == expected
    findings = json.loads((reports / "findings.json").read_text(encoding="utf-8"))
    assert findings["contract"] == expected
    assert requirement(findings, "SCH-STATUS")["outcome"] == "PASS"
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert "VMware Cloud Foundation API Reference Guide 9.0.2.0" in summary
    assert sha256(vendor_path)[:12] in summary
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert "9.0.2.0" in html and sha256(vendor_path) in html


def test_without_spec_the_reports_name_the_shipped_fragment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "r"
    code, out, err = run_cli(["run", "--report-dir", str(reports), *FAST], capsys)
    assert code == ExitCode.OK, out + err
    fragment = load_fragment()
    manifest = json.loads((reports / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["contract"] == {"title": fragment.title, "version": fragment.version,
                                    "sha256": fragment.sha256, "source": None}


def test_checks_read_the_contract_a_document_without_404_fails_the_reference_404s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = seed()
    del document["paths"]["/v1/tasks/{id}"]["delete"]["responses"]["404"]
    spec = write(tmp_path, document)
    reports = tmp_path / "r"
    code, out, err = run_cli(["run", "--spec", str(spec), "--report-dir", str(reports), *FAST], capsys)
    # The reference server is correct for the shipped fragment (previous test): only the contract changed.
    assert code == ExitCode.NOT_CONFORMANT, out + err
    findings = json.loads((reports / "findings.json").read_text(encoding="utf-8"))
    status = requirement(findings, "SCH-STATUS")
    assert status["outcome"] == "FAIL"
    messages = [v["message"] for f in status["findings"] for v in f["violations"]]
    assert any("404" in m and "200, 409, 500" in m for m in messages), messages
    assert findings["contract"]["sha256"] == sha256(spec)


def test_spec_is_read_from_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = seed()
    del document["paths"]["/v1/tasks/{id}"]["delete"]["responses"]["404"]
    write(tmp_path, document, "no404.json")
    config = tmp_path / "sddc-conformance.toml"
    config.write_text('spec = "no404.json"\n', encoding="utf-8")
    reports = tmp_path / "r"
    code, out, err = run_cli(["run", "--config", str(config), "--report-dir", str(reports), *FAST], capsys)
    assert code == ExitCode.NOT_CONFORMANT, out + err
    findings = json.loads((reports / "findings.json").read_text(encoding="utf-8"))
    assert findings["contract"]["source"] == "no404.json"


def _no_operation(tmp_path: Path) -> Path:
    document = seed()
    document["paths"] = {"/v1/tasks": {"get": {"responses": {"200": {"description": "ok"}}}}}
    return write(tmp_path, document)


def _two_error_schemas(tmp_path: Path) -> Path:
    document = seed()
    document["components"]["schemas"]["Other"] = {"type": "object"}
    responses = document["paths"]["/v1/tasks/{id}"]["delete"]["responses"]
    responses["500"]["content"]["*/*"]["schema"] = {"$ref": "#/components/schemas/Other"}
    return write(tmp_path, document)


UNUSABLE = {
    "missing": lambda tmp: tmp / "absent.json",
    "not OpenAPI": lambda tmp: write(tmp, {"hello": "world"}),
    "no cancel operation": _no_operation,
    "uninterpretable: two body schemas": _two_error_schemas,
}


@pytest.mark.parametrize("name", UNUSABLE)
def test_unusable_spec_is_exit_2_one_line_before_any_request(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_server: Any
) -> None:
    stub: StubServer = stub_server(lambda request, release: Reply(404, b"{}"))
    spec = UNUSABLE[name](tmp_path)
    reports = tmp_path / "r"
    code, out, err = run_cli(["run", "--base-url", stub.base_url, "--token", "t", "--spec", str(spec),
                              "--report-dir", str(reports), *FAST], capsys)
    assert code == ExitCode.USAGE_ERROR
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sddc-conformance: error: "), err
    assert stub.seen == []
    assert not reports.exists()
