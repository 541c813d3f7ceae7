"""The reports of a run: junit.xml, findings.json, report.html, summary.md and manifest.json."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import HOSTILE_MARKUP, REPO_ROOT, hostile_run, run_in_process
from junitparser import Failure, JUnitXml, Skipped

from conformance import requirements
from conformance.model import Outcome
from conformance.outcome import RunResult
from conformance.report import WRITERS, write_reports
from conformance.report.evidence import product_line
from conformance.report.findings_json import write_findings
from conformance.report.html import render_html
from conformance.report.junit import write_junit
from conformance.report.manifest import KEY_DEPENDENCIES, write_manifest
from conformance.report.summary_md import escape, render_summary

SCHEMA = json.loads((REPO_ROOT / "docs" / "findings.schema.json").read_text(encoding="utf-8"))
CREDENTIAL_URL = "http://auditor:url-secret-7781@127.0.0.1:9"


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _result(run: RunResult, requirement_id: str) -> Any:
    return next(r for r in run.results if r.requirement.id == requirement_id)


def _written(run: RunResult, directory: Path) -> Path:
    write_reports(run, directory)
    return directory


# -- junit.xml -------------------------------------------------------------------------------------

def _cases(path: Path) -> dict[str, Any]:
    xml = JUnitXml.fromfile(str(path))
    return {case.name.split(":")[0]: (suite, case) for suite in xml for case in suite}


def test_junit_has_one_testcase_per_requirement_grouped_by_profile(defective_run: RunResult, tmp_path: Path) -> None:
    cases = _cases(write_junit(defective_run, tmp_path))
    catalogue = requirements.catalogue()
    assert set(cases) == {r.id for r in catalogue}
    assert len(cases) == len(catalogue)
    for requirement in catalogue:
        suite, case = cases[requirement.id]
        assert suite.name == f"sddc-conformance {requirement.profile}"
        assert case.classname == f"sddc-conformance.{requirement.profile}"


def test_junit_failure_carries_the_evidence(defective_run: RunResult, tmp_path: Path) -> None:
    cases = _cases(write_junit(defective_run, tmp_path))
    _, case = cases["SCH-ERROR-BODY"]
    failures = [r for r in case.result if isinstance(r, Failure)]
    assert len(failures) == 1
    assert failures[0].type == "MUST"
    assert "\n" not in failures[0].message
    assert "the body is not JSON" in failures[0].text
    assert "curl -X DELETE" in failures[0].text


def test_junit_warning_stays_green_with_its_evidence(defective_run: RunResult, tmp_path: Path) -> None:
    _, case = _cases(write_junit(defective_run, tmp_path))["SCH-ERROR-MEDIA"]
    assert case.is_passed
    assert "WARNING" in case.system_out and "text/plain" in case.system_out


def test_junit_strict_turns_a_warning_into_a_failure(defective_run: RunResult, tmp_path: Path) -> None:
    strict = dataclasses.replace(defective_run, strict=True)
    _, case = _cases(write_junit(strict, tmp_path))["SCH-ERROR-MEDIA"]
    assert any(isinstance(r, Failure) for r in case.result)


def test_junit_statistics_match_the_run(defective_run: RunResult, tmp_path: Path) -> None:
    root = ET.parse(write_junit(defective_run, tmp_path)).getroot()
    failing = [r for r in defective_run.results if r.outcome is Outcome.FAIL and not r.is_warning]
    skipped = [r for r in defective_run.results if r.outcome in (Outcome.NOT_RUN, Outcome.SKIPPED)]
    assert int(root.get("tests", -1)) == len(defective_run.results)
    assert int(root.get("failures", -1)) == len(failing) > 0
    assert int(root.get("skipped", -1)) == len(skipped)
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["verdict"] == "NOT CONFORMANT"
    assert properties["seed"] == str(defective_run.seed)


def test_junit_not_run_is_skipped_but_fails_under_certify(defective_run: RunResult, tmp_path: Path) -> None:
    hostile = hostile_run(defective_run)
    not_run = next(r for r in hostile.results if r.outcome is Outcome.NOT_RUN and r.requirement.severity == "MUST")
    _, case = _cases(write_junit(hostile, tmp_path))[not_run.requirement.id]
    assert any(isinstance(r, Skipped) for r in case.result)
    _, case = _cases(write_junit(dataclasses.replace(hostile, certify=True), tmp_path))[not_run.requirement.id]
    assert any(isinstance(r, Failure) for r in case.result)


def test_junit_survives_control_characters_from_the_target(defective_run: RunResult, tmp_path: Path) -> None:
    path = write_junit(hostile_run(defective_run), tmp_path)
    ET.parse(path)  # raises on characters XML 1.0 cannot carry
    assert HOSTILE_MARKUP in path.read_text(encoding="utf-8").replace("&lt;", "<").replace("&gt;", ">")


# -- findings.json ---------------------------------------------------------------------------------

def test_findings_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("defects", [(), ("error-wrong-type-nested", "success-with-body")], ids=["clean", "defects"])
def test_findings_of_real_runs_validate(defects: tuple[str, ...], tmp_path: Path) -> None:
    run = run_in_process(*defects, max_examples=25, seed=7)
    document = json.loads(write_findings(run, tmp_path).read_text(encoding="utf-8"))
    errors = [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(document)]
    assert errors == []
    if defects:
        failed = {r["id"] for r in document["requirements"] if r["outcome"] == "FAIL"}
        assert {"SCH-ERROR-BODY", "SCH-200-EMPTY"} <= failed
        paths = [v["path"] for r in document["requirements"] for f in r["findings"] for v in f["violations"]]
        assert any(p and "nestedErrors" in p and p.endswith("errorCode") for p in paths)


def test_findings_of_a_hostile_answer_validate(defective_run: RunResult, tmp_path: Path) -> None:
    document = json.loads(write_findings(hostile_run(defective_run), tmp_path).read_text(encoding="utf-8"))
    assert list(_validator().iter_errors(document)) == []


def test_schema_is_not_vacuous(defective_run: RunResult, tmp_path: Path) -> None:
    document = json.loads(write_findings(defective_run, tmp_path).read_text(encoding="utf-8"))
    broken = [
        {k: v for k, v in document.items() if k != "verdict"},
        {**document, "verdict": "PROBABLY"},
        {**document, "requirements": [{**document["requirements"][0], "outcome": "MAYBE"}]},
        {**document, "target": {**document["target"], "url": CREDENTIAL_URL}},
        {**document, "surprise": True},
    ]
    for candidate in broken:
        assert not _validator().is_valid(candidate)


def test_no_report_carries_credentials_of_the_url(defective_run: RunResult, tmp_path: Path) -> None:
    run = dataclasses.replace(defective_run, target_url=CREDENTIAL_URL)
    _written(run, tmp_path)
    for path in tmp_path.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "url-secret-7781" not in text, path.name
        assert "auditor" not in text, path.name


# -- report.html -----------------------------------------------------------------------------------

class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs


def _parsed(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def test_html_shows_verdict_run_details_and_every_requirement(defective_run: RunResult) -> None:
    page = render_html(defective_run)
    assert 'id="verdict"' in page and "NOT CONFORMANT" in page
    for text in (defective_run.suite_version, defective_run.fragment_version, defective_run.fragment_sha256,
                 str(defective_run.seed), defective_run.profile, "0.1.0-reference"):
        assert text in page
    assert "not exposed" in render_html(dataclasses.replace(defective_run, product=None))
    rows = re.findall(r"<tr><td class=\"o o-([A-Z-]+)\">", page)
    assert len(rows) == len(defective_run.results)
    assert {"PASS", "FAIL", "WARN"} <= set(rows)


@pytest.mark.parametrize(("product", "line"), [
    ({"name": "SDDC Manager", "version": "5.2.0", "fqdn": "sddc.example"}, "SDDC Manager 5.2.0 at sddc.example"),
    ({"name": "SDDC Manager", "version": "5.2.0"}, "SDDC Manager 5.2.0"),
    ({"version": "5.2.1.0", "build": "23853025"}, "5.2.1.0 build 23853025"),
    (None, "not exposed"),
])
def test_the_product_reads_as_a_sentence(defective_run: RunResult, product: dict[str, str] | None,
                                         line: str) -> None:
    run = dataclasses.replace(defective_run, product=product)
    assert product_line(run) == line
    assert f"<dt>Product</dt><dd>{line}</dd>" in render_html(run)
    assert f"product `{line}`" in render_summary(run)


def test_html_shows_each_failure_with_request_excerpt_paths_and_curl(defective_run: RunResult) -> None:
    page = render_html(dataclasses.replace(defective_run, product={"version": "5.2.1.0", "build": "23853025"}))
    assert "5.2.1.0" in page and "not exposed" not in page
    section = page[page.index('id="f-SCH-ERROR-BODY"'):]
    assert "DELETE http://127.0.0.1" in section
    assert "curl -X DELETE" in section
    assert "Task not found" in section  # the plain-text body, excerpted
    assert "JSON path" in section


def test_html_shows_json_paths_of_nested_violations(tmp_path: Path) -> None:
    page = render_html(run_in_process("error-wrong-type-nested", max_examples=20, seed=3))
    assert re.search(r"<code>/nestedErrors/0/nestedErrors/0/nestedErrors/0/errorCode</code>", page)


def test_html_escapes_everything_from_the_target(defective_run: RunResult) -> None:
    page = render_html(hostile_run(defective_run))
    assert HOSTILE_MARKUP not in page and "<img" not in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in page
    parsed = _parsed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]


def test_html_is_self_contained(defective_run: RunResult) -> None:
    page = render_html(hostile_run(defective_run))
    parsed = _parsed(page)
    assert {"link", "script", "iframe", "object", "embed", "img"}.isdisjoint(parsed.tags)
    references = [v for name, v in parsed.attributes if name in ("src", "href") and v is not None]
    assert all(v.startswith("#") for v in references)
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # the Content-Security-Policy that blocks any fetch


# -- summary.md ------------------------------------------------------------------------------------

def _outside_code_spans(markdown: str) -> str:
    # A code span ends at the first backtick run exactly as long as the one that opened it.
    return re.sub(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)", "", markdown)


def test_summary_lists_verdict_counts_and_only_what_needs_attention(defective_run: RunResult) -> None:
    text = render_summary(defective_run)
    assert text.startswith("## ") and "NOT CONFORMANT" in text.splitlines()[0]
    assert f"**{defective_run.count(Outcome.PASS)}** pass" in text
    assert "| FAIL | `SCH-ERROR-BODY` |" in text
    assert "| WARN | `SCH-ERROR-MEDIA` |" in text
    assert "| PASS |" not in text
    assert len(text.splitlines()) < 40


def test_summary_of_a_clean_run_has_no_table(clean_run: RunResult) -> None:
    text = render_summary(clean_run)
    assert "CONFORMANT" in text and "NOT CONFORMANT" not in text
    assert "| FAIL |" not in text


def test_summary_is_link_free_and_inert(defective_run: RunResult) -> None:
    text = render_summary(hostile_run(defective_run))
    plain = _outside_code_spans(text)
    assert "<" not in plain.replace("\\<", "")
    assert "http" not in plain and "](" not in plain.replace("\\]", "")
    for line in text.splitlines():
        if line.startswith("|"):
            # every row keeps its six cells: target text cannot break the table
            assert len(re.findall(r"(?<!\\)\|", line)) == 7, line


@pytest.mark.parametrize(("text", "markdown"), [
    # Plain text reads as it is: no backslash before ( : . @ - ! #.
    ("NO VERDICT (target: POST /v1/tokens refused user admin: 401) - see the log!",
     "NO VERDICT (target: POST /v1/tokens refused user admin: 401) - see the log!"),
    ("the ReferenceConfig.settle_seconds window, #7 of 9", "the ReferenceConfig.settle_seconds window, `#7` of 9"),
    # Words a renderer links or notifies on go into code spans; punctuation around them stays out.
    ("for administrator@vsphere.local.", "for `administrator@vsphere.local`."),
    ("(https://sddc.example/v1?x=1)", "(`https://sddc.example/v1?x=1`)"),
    ("ask @team or www.example.com", "ask `@team` or `www.example.com`"),
    # What Markdown would interpret is escaped, and only that.
    ("*a* _b_ [c](d) <i> `e` a|b ~~f~~ $g$ &amp; __init__",
     "\\*a\\* \\_b\\_ \\[c\\](d) \\<i> \\`e\\` a\\|b \\~\\~f\\~\\~ \\$g\\$ \\&amp; \\_\\_init\\_\\_"),
    ("a & b", "a & b"),
])
def test_summary_escapes_only_what_markdown_needs(text: str, markdown: str) -> None:
    assert escape(text) == markdown


# -- manifest.json ---------------------------------------------------------------------------------

def test_manifest_is_written_last_and_pins_every_other_file(defective_reports: Path) -> None:
    assert WRITERS[-1] is write_manifest
    manifest = json.loads((defective_reports / "manifest.json").read_text(encoding="utf-8"))
    others = {p.name for p in defective_reports.iterdir() if p.name != "manifest.json"}
    assert others == {"junit.xml", "findings.json", "report.html", "summary.md", "profile.json"}
    assert set(manifest["artifacts"]) == others
    for name, entry in manifest["artifacts"].items():
        data = (defective_reports / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_manifest_records_what_was_tested_and_with_what(defective_run: RunResult, defective_reports: Path) -> None:
    manifest = json.loads((defective_reports / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["suite_version"] == defective_run.suite_version
    assert manifest["fragment"] == {"version": defective_run.fragment_version,
                                    "sha256": defective_run.fragment_sha256}
    assert manifest["profile"] == defective_run.profile and manifest["seed"] == defective_run.seed
    assert manifest["target"]["url"] == defective_run.target_url
    assert manifest["target"]["product"]["version"].endswith("-reference")
    assert manifest["started_at"] == defective_run.started_at
    assert manifest["finished_at"] == defective_run.finished_at
    assert re.fullmatch(r"3\.\d+\.\d+.*", manifest["python"]["version"])
    assert set(KEY_DEPENDENCIES) <= set(manifest["dependencies"])
    assert all(manifest["dependencies"][name] for name in ("schemathesis", "hypothesis", "jsonschema",
                                                            "requests", "pytest"))
    assert manifest["counts"] == {str(o): defective_run.count(o) for o in Outcome}
    assert manifest["labels"]["WARN"] == len(defective_run.warnings)
    assert manifest["verdict"] == "NOT CONFORMANT"


def test_manifest_keeps_product_details_and_strips_url_credentials(defective_run: RunResult,
                                                                     tmp_path: Path) -> None:
    run = dataclasses.replace(defective_run, target_url=CREDENTIAL_URL, product={"version": "5.2.1.0"})
    manifest = json.loads(_written(run, tmp_path).joinpath("manifest.json").read_text(encoding="utf-8"))
    assert manifest["target"]["url"] == "http://127.0.0.1:9"
    assert manifest["target"]["product"] == {"version": "5.2.1.0"}
