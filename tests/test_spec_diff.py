"""Spec drift: the shipped fragment against documents derived from it by one edit, and VMware's own."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.contract import MAX_BYTES, MAX_DEPTH, check_shape, fragment_document
from conformance.spec import fragment_path, load_fragment
from conformance.spec_diff import (
    CancelContract,
    Drift,
    SpecError,
    contract_fragment,
    diff,
    extract_cancel,
    load_contract,
    load_document,
    render_json,
    render_markdown,
    render_text,
)

VENDOR_DOCUMENT = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "vcf-api-9.0.2.0.json"
OPERATION = ("paths", "/v1/tasks/{id}", "delete")


# -- helpers --------------------------------------------------------------------------------------


def seed() -> dict[str, Any]:
    return dict(yaml.safe_load(fragment_path().read_text(encoding="utf-8")))


def op(document: dict[str, Any]) -> dict[str, Any]:
    node: Any = document
    for key in OPERATION:
        node = node[key]
    assert isinstance(node, dict)
    return node


def write(tmp_path: Path, document: Any, name: str = "doc.json") -> Path:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(document), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fragment() -> CancelContract:
    return load_contract(fragment_path())


def edited(tmp_path: Path, edit: Callable[[dict[str, Any]], None], name: str = "doc.json") -> CancelContract:
    document = seed()
    edit(document)
    return load_contract(write(tmp_path, document, name))


def facts(drifts: list[Drift]) -> set[tuple[str, str, bool]]:
    return {(d.path, d.kind, d.tolerated) for d in drifts}


def one_line(exc: pytest.ExceptionInfo[SpecError]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "\r" not in message
    return message


def swagger2(document: dict[str, Any]) -> dict[str, Any]:
    """The fragment as Swagger 2.0: definitions, body `schema`, `produces`, parameter `type`."""
    text = json.dumps(document["components"]["schemas"]).replace("#/components/schemas/", "#/definitions/")
    operation = copy.deepcopy(op(document))
    for parameter in operation["parameters"]:
        parameter["type"] = parameter.pop("schema")["type"]
    for response in operation["responses"].values():
        content = response.pop("content", None)
        if content:
            ref = content["*/*"]["schema"]["$ref"].replace("#/components/schemas/", "#/definitions/")
            response["schema"] = {"$ref": ref}
    return {
        "swagger": "2.0",
        "info": document["info"],
        "produces": ["*/*"],
        "paths": {"/v1/tasks/{id}": {"delete": operation}},
        "definitions": json.loads(text),
    }


# -- the fragment against itself and against one-edit variants -------------------------------------


def test_the_fragment_has_no_drift_against_itself(fragment: CancelContract) -> None:
    assert diff(fragment, fragment) == []
    assert diff(fragment, load_contract(fragment_path())) == []
    assert "no drift" in render_text([])


def _remove_409(d: dict[str, Any]) -> None:
    del op(d)["responses"]["409"]


def _add_202(d: dict[str, Any]) -> None:
    op(d)["responses"]["202"] = {"description": "Accepted"}


def _retype_deep_message(d: dict[str, Any]) -> None:
    # Error.nestedErrors[] -> an inline Error whose nestedErrors[] -> an inline Error whose
    # causes[] -> an inline ErrorCause with message: integer. Everything else stays the same.
    schemas = d["components"]["schemas"]
    cause = copy.deepcopy(schemas["ErrorCause"])
    cause["properties"]["message"] = {"type": "integer"}
    level2 = copy.deepcopy(schemas["Error"])
    level2["properties"]["causes"]["items"] = cause
    level1 = copy.deepcopy(schemas["Error"])
    level1["properties"]["nestedErrors"]["items"] = level2
    schemas["Error"]["properties"]["nestedErrors"]["items"] = level1


def _json_media(d: dict[str, Any]) -> None:
    responses = op(d)["responses"]
    responses["404"]["content"] = {"application/json": responses["404"]["content"]["*/*"]}


def _text_media(d: dict[str, Any]) -> None:
    responses = op(d)["responses"]
    responses["404"]["content"] = {"text/plain": responses["404"]["content"]["*/*"]}


def _required_field(d: dict[str, Any]) -> None:
    error = d["components"]["schemas"]["Error"]
    error["properties"]["tenant"] = {"type": "string"}
    error["required"] = ["tenant"]


def _extra_field(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Error"]["properties"]["label"] = {"type": "string"}


def _security(d: dict[str, Any]) -> None:
    d["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    op(d)["security"] = [{"bearer": []}]


def _global_security(d: dict[str, Any]) -> None:
    d["components"]["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic"}}
    d["security"] = [{"basic": []}]


def _no_extra_fields(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Error"]["additionalProperties"] = False


def _context_strings(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Error"]["properties"]["context"]["additionalProperties"] = {"type": "string"}


def _remove_field(d: dict[str, Any]) -> None:
    del d["components"]["schemas"]["ErrorCause"]["properties"]["type"]


def _make_required(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Error"]["required"] = ["message"]


def _rename_id(d: dict[str, Any]) -> None:
    item = d["paths"].pop("/v1/tasks/{id}")
    item["delete"]["parameters"][0]["name"] = "taskId"
    d["paths"]["/v1/tasks/{taskId}"] = item


def _id_integer(d: dict[str, Any]) -> None:
    op(d)["parameters"][0]["schema"] = {"type": "integer"}


def _reword(d: dict[str, Any]) -> None:
    op(d)["responses"]["404"]["description"] = "No such task"


def _enum(d: dict[str, Any]) -> None:
    d["components"]["schemas"]["Error"]["properties"]["errorType"]["enum"] = ["ERROR", "WARNING"]


def _required_query(d: dict[str, Any]) -> None:
    op(d)["parameters"].append({"name": "force", "in": "query", "required": True, "schema": {"type": "boolean"}})


def _optional_query(d: dict[str, Any]) -> None:
    op(d)["parameters"].append({"name": "force", "in": "query", "schema": {"type": "boolean"}})


def _only_by_operation_id(d: dict[str, Any]) -> None:
    # Found by operationId although the path differs: the path itself is not compared, the id is.
    item = d["paths"].pop("/v1/tasks/{id}")
    d["paths"]["/v1/tasks/{id}/cancel"] = item


ONE_EDIT = {
    "removed 409": (_remove_409, {("responses/409", "removed", False)}),
    "added 202": (_add_202, {("responses/202", "added", False)}),
    "message retyped three levels down": (
        _retype_deep_message,
        {("Error.nestedErrors[].nestedErrors[].causes[].message", "retyped", False)},
    ),
    "application/json for */*": (_json_media, {("responses/404/content", "changed", True)}),
    "text/plain for */*": (_text_media, {("responses/404/content", "changed", False)}),
    "added required field": (_required_field, {("Error.tenant", "added", False)}),
    "added extra field": (_extra_field, {("Error.label", "added", True)}),
    "security added on the operation": (_security, {("security", "added", False)}),
    "security added globally": (_global_security, {("security", "added", False)}),
    "additionalProperties false": (_no_extra_fields, {("Error/additionalProperties", "changed", False)}),
    "context values typed": (_context_strings, {("Error.context/additionalProperties", "changed", True)}),
    # ErrorCause is first reached through Error.causes: reported there, once.
    "field removed": (_remove_field, {("Error.causes[].type", "removed", False)}),
    "field made required": (_make_required, {("Error.message", "changed", False)}),
    "id parameter renamed": (_rename_id, {("parameters/id/name", "changed", False)}),
    "id parameter retyped": (_id_integer, {("parameters/id/type", "retyped", False)}),
    "description reworded": (_reword, {("responses/404/description", "changed", True)}),
    "enum added": (_enum, {("Error.errorType/enum", "changed", False)}),
    "required query parameter": (_required_query, {("parameters/query/force", "added", False)}),
    "optional query parameter": (_optional_query, {("parameters/query/force", "added", True)}),
    "found by operationId": (_only_by_operation_id, set()),
}


@pytest.mark.parametrize("name", ONE_EDIT)
@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_one_edit_is_reported_at_its_path(tmp_path: Path, fragment: CancelContract, name: str, suffix: str) -> None:
    edit, expected = ONE_EDIT[name]
    drifts = diff(fragment, edited(tmp_path, edit, "doc" + suffix))
    assert facts(drifts) == expected
    for drift in drifts:
        assert drift.why


def test_a_retyped_field_names_both_types(tmp_path: Path, fragment: CancelContract) -> None:
    (drift,) = diff(fragment, edited(tmp_path, _retype_deep_message))
    assert (drift.old, drift.new) == ("string", "integer")


def test_a_removed_status_keeps_its_description(tmp_path: Path, fragment: CancelContract) -> None:
    (drift,) = diff(fragment, edited(tmp_path, _remove_409))
    assert drift.old is not None and drift.old.startswith("Task can not be cancelled")
    assert drift.new is None


def test_recursive_schemas_are_compared_once_each(tmp_path: Path, fragment: CancelContract) -> None:
    # Error.nestedErrors[] refers to Error: the extra field is reported once, at Error, not per level.
    drifts = diff(fragment, edited(tmp_path, _extra_field))
    assert [d.path for d in drifts] == ["Error.label"]


def test_swagger_2_version_of_the_fragment_has_the_same_contract(tmp_path: Path, fragment: CancelContract) -> None:
    for name in ("swagger.json", "swagger.yaml"):
        contract = load_contract(write(tmp_path, swagger2(seed()), name))
        assert contract.openapi == "2.0"
        assert [d for d in diff(fragment, contract) if not d.tolerated] == []
        assert diff(fragment, contract) == []
        assert diff(contract, fragment) == []


def test_swagger_2_base_path_and_own_produces(tmp_path: Path, fragment: CancelContract) -> None:
    document = swagger2(seed())
    document["basePath"] = "/v1"
    document["paths"] = {"/tasks/{id}": document["paths"]["/v1/tasks/{id}"]}
    document["paths"]["/tasks/{id}"]["delete"]["produces"] = ["application/json"]
    drifts = diff(fragment, load_contract(write(tmp_path, document)))
    assert facts(drifts) == {(f"responses/{s}/content", "changed", True) for s in ("404", "409", "500")}


def test_extract_cancel_takes_a_parsed_document(fragment: CancelContract) -> None:
    contract = extract_cancel(seed())
    assert contract.sha256 is None
    assert diff(fragment, contract) == []
    assert contract.id_parameter is not None and contract.id_parameter.type == "string"
    assert sorted(contract.responses) == ["200", "404", "409", "500"]
    assert contract.responses["200"].media_types == ()


# -- contract_fragment: a Fragment the checks can read ---------------------------------------------


def test_contract_fragment_of_the_shipped_fragment_behaves_like_it() -> None:
    shipped = load_fragment()
    rebuilt = contract_fragment(fragment_path())
    assert rebuilt.sha256 == shipped.sha256
    assert (rebuilt.method, rebuilt.path_template) == (shipped.method, shipped.path_template)
    assert rebuilt.documented_statuses == shipped.documented_statuses
    for status in shipped.documented_statuses:
        assert rebuilt.response_has_body(status) == shipped.response_has_body(status)
        assert rebuilt.response_schema_ref(status) == shipped.response_schema_ref(status)
        assert rebuilt.response_description(status) == shipped.response_description(status)
    assert rebuilt.error_fields == shipped.error_fields
    assert rebuilt.cause_fields == shipped.cause_fields
    assert rebuilt.title == shipped.title
    body = {"message": "x", "nestedErrors": [{"causes": [{"message": 3}]}]}
    assert rebuilt.error_is_valid(body) is shipped.error_is_valid(body) is False


def test_contract_fragment_of_swagger_2(tmp_path: Path) -> None:
    fragment = contract_fragment(write(tmp_path, swagger2(seed()), "swagger.yaml"))
    assert fragment.documented_statuses == frozenset({200, 404, 409, 500})
    assert fragment.response_schema_ref(404) == "#/components/schemas/Error"
    assert not fragment.response_has_body(200)
    assert fragment.error_is_valid({"message": "x", "causes": [{"type": "t"}]})
    assert not fragment.error_is_valid({"nestedErrors": [{"message": ["no"]}]})
    assert "definitions" not in json.dumps(fragment.document)


def test_contract_fragment_names_the_operation_and_id_as_the_checks_expect(tmp_path: Path) -> None:
    document = seed()
    _rename_id(document)
    op_ = document["paths"]["/v1/tasks/{taskId}"]["delete"]
    op_["operationId"] = "cancelTheTask"
    document["components"]["schemas"]["ApiError"] = document["components"]["schemas"].pop("Error")
    text = json.dumps(document).replace("/schemas/Error\"", "/schemas/ApiError\"")
    fragment = contract_fragment(write(tmp_path, json.loads(text)))
    assert (fragment.method, fragment.path_template) == ("DELETE", "/v1/tasks/{id}")
    assert "message" in fragment.error_fields and fragment.cause_fields == {"message", "type"}
    assert not fragment.error_is_valid({"message": 1})


def test_contract_fragment_refuses_what_the_checks_cannot_interpret(tmp_path: Path) -> None:
    no_bodies = seed()
    for response in op(no_bodies)["responses"].values():
        response.pop("content", None)
    two_schemas = seed()
    op(two_schemas)["responses"]["500"]["content"]["*/*"]["schema"] = {"$ref": "#/components/schemas/ErrorCause"}
    inline = seed()
    op(inline)["responses"]["404"]["content"]["*/*"]["schema"] = {"type": "object"}
    default = seed()
    op(default)["responses"]["default"] = {"description": "anything else"}
    no_causes = seed()
    del no_causes["components"]["schemas"]["Error"]["properties"]["causes"]
    for document in (no_bodies, two_schemas, inline, default, no_causes):
        with pytest.raises(SpecError) as exc:
            contract_fragment(write(tmp_path, document))
        one_line(exc)


def test_fragment_document_is_small() -> None:
    document = fragment_document(load_contract(fragment_path()))
    assert set(document["components"]["schemas"]) == {"Error", "ErrorCause"}


# -- bounds and refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 5_000, 200_000])
def test_too_deep_json_is_refused(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"openapi": "3.0.3", "paths": {}, "x": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(SpecError, match="deeper than") as exc:
        load_document(path)
    one_line(exc)


@pytest.mark.parametrize("style", ["flow", "block"])
def test_too_deep_yaml_is_refused(tmp_path: Path, style: str) -> None:
    path = tmp_path / "deep.yaml"
    if style == "flow":
        path.write_text("openapi: 3.0.3\npaths: {}\nx: " + "[" * 100_000 + "]" * 100_000 + "\n")
    else:
        path.write_text("openapi: 3.0.3\npaths: {}\nx:\n" + "".join(" " * i + "- \n" for i in range(1, 400)))
    # libyaml refuses very deep flow collections itself; either way it is one SpecError.
    with pytest.raises(SpecError, match=r"deeper than|nesting depth") as exc:
        load_document(path)
    one_line(exc)


def test_depth_within_bounds_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text('{"openapi": "3.0.3", "paths": {}, "x": ' + "[" * 150 + "]" * 150 + "}")
    assert load_document(path)["openapi"] == "3.0.3"


def test_too_big_is_refused_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, seed())
    with pytest.raises(SpecError, match="larger than 100 bytes") as exc:
        load_document(path, max_bytes=100)
    one_line(exc)


def test_default_size_bound_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: nothing is written or read
    with pytest.raises(SpecError, match=f"larger than {MAX_BYTES} bytes") as exc:
        load_document(path)
    one_line(exc)


def test_yaml_alias_bombs_and_cycles_are_refused(tmp_path: Path) -> None:
    lines = ["openapi: 3.0.3", "paths: {}", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(SpecError, match="more than") as exc:
        load_document(bomb)
    one_line(exc)
    cycle: Any = []
    cycle.append(cycle)
    with pytest.raises(SpecError, match="contains itself"):
        check_shape({"x": cycle})


@pytest.mark.parametrize(
    "content",
    [
        '{"hello": "world"}',
        "- just\n- a list\n",
        "openapi: 2.0.0\npaths: {}\n",
        'swagger: "2.0"\n',
        "key: [unclosed\n",
        "\x00\x01binary\xff",
        "",
    ],
)
def test_not_openapi_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(SpecError) as exc:
        load_document(path)
    one_line(exc)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read") as exc:
        load_document(tmp_path / "no\nsuch.json")
    one_line(exc)


def test_no_cancel_operation_is_refused(tmp_path: Path) -> None:
    document = seed()
    document["paths"] = {"/v1/tasks/{id}": {"get": {"operationId": "getTask", "responses": {"200": {}}}}}
    with pytest.raises(SpecError, match="no cancel operation") as exc:
        load_contract(write(tmp_path, document))
    one_line(exc)


def test_external_and_dangling_references_are_refused(tmp_path: Path) -> None:
    external = seed()
    external["components"]["schemas"]["Error"]["properties"]["causes"]["items"] = {"$ref": "other.yaml#/Cause"}
    dangling = seed()
    op(dangling)["responses"]["404"]["content"]["*/*"]["schema"] = {"$ref": "#/components/schemas/Nope"}
    for document, message in ((external, "outside the document"), (dangling, "does not resolve")):
        with pytest.raises(SpecError, match=message) as exc:
            load_contract(write(tmp_path, document))
        one_line(exc)


def test_referenced_responses_and_parameters_are_followed(tmp_path: Path, fragment: CancelContract) -> None:
    document = seed()
    operation = op(document)
    document["components"]["responses"] = {"NotFound": operation["responses"]["404"]}
    document["components"]["parameters"] = {"Id": operation["parameters"][0]}
    operation["responses"]["404"] = {"$ref": "#/components/responses/NotFound"}
    operation["parameters"] = [{"$ref": "#/components/parameters/Id"}]
    assert diff(fragment, load_contract(write(tmp_path, document))) == []


# -- rendering ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")
HOSTILE = "Task\x1b[31m not\x07 found\x9b2J | pipe\nnext line\u202e"


def _hostile(d: dict[str, Any]) -> None:
    op(d)["responses"]["404"]["description"] = HOSTILE
    d["info"]["title"] = "Evil\x1b]0;title\x07"
    d["components"]["schemas"]["Error"]["properties"]["x\x1b[2Jy|z"] = {"type": "string"}


def test_control_characters_are_escaped_in_every_rendering(tmp_path: Path, fragment: CancelContract) -> None:
    hostile = edited(tmp_path, _hostile)
    drifts = diff(fragment, hostile)
    assert {d.path for d in drifts} == {"responses/404/description", 'Error["x\\u001b[2Jy|z"]'}
    renderings = {
        "text": render_text(drifts, fragment, hostile),
        "json": render_json(drifts, fragment, hostile),
        "markdown": render_markdown(drifts, fragment, hostile),
    }
    for name, rendered in renderings.items():
        assert not _CONTROL.search(rendered), name
        assert "next line" not in rendered.splitlines()[-1] and not any(
            line.startswith("next line") for line in rendered.splitlines()
        ), name
    assert "\\x1b[31m" in renderings["text"]
    payload = json.loads(renderings["json"])
    for drift in payload["drifts"]:
        assert not any(_CONTROL.search(str(v)) for v in drift.values())
    assert not _CONTROL.search(payload["new"]["title"])
    # Markdown: one row per drift, the pipe in the text escaped.
    rows = [line for line in renderings["markdown"].splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(drifts)
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 7 for line in rows)
    assert "\\|" in renderings["markdown"]


def test_json_rendering_names_both_documents(tmp_path: Path, fragment: CancelContract) -> None:
    other = edited(tmp_path, _remove_409)
    payload = json.loads(render_json(diff(fragment, other), fragment, other))
    assert payload["old"]["sha256"] == fragment.sha256 and len(payload["new"]["sha256"]) == 64
    assert payload["old"]["version"] == "1.0.0"
    assert payload["breaking"] == 1 and payload["tolerated"] == 0
    assert payload["drifts"] == [
        {"path": "responses/409", "kind": "removed", "old": fragment.responses["409"].description, "new": None,
         "tolerated": False, "why": payload["drifts"][0]["why"]}
    ]


def test_markdown_lists_verdict_changes_first(tmp_path: Path, fragment: CancelContract) -> None:
    def both(d: dict[str, Any]) -> None:
        _extra_field(d)
        _remove_409(d)

    rendered = render_markdown(diff(fragment, edited(tmp_path, both)))
    rows = [line for line in rendered.splitlines() if line.startswith("| ") and "Verdict" not in line]
    assert "changes verdict" in rows[0] and "tolerated" in rows[1]


# -- VMware's published document ------------------------------------------------------------------

VENDOR_DRIFT = {
    ("responses/404/content", "changed", True),
    ("responses/409/content", "changed", True),
    ("responses/500/content", "changed", True),
    ("Error.label", "added", True),
    ("Error.remediationUrl", "added", True),
    ("Error.context/additionalProperties", "changed", True),
}


@pytest.fixture(scope="module")
def vendor_path() -> Path:
    if not VENDOR_DOCUMENT.is_file():
        pytest.skip(f"VMware's VCF API 9.0.2.0 document is not at {VENDOR_DOCUMENT} (not shipped with the suite)")
    return VENDOR_DOCUMENT


def test_vendor_document_drift_is_exactly_the_known_differences(fragment: CancelContract, vendor_path: Path) -> None:
    vendor = load_contract(vendor_path)
    assert (vendor.title, vendor.version, vendor.openapi) == ("VMware Cloud Foundation API Reference Guide",
                                                              "9.0.2.0", "3.0.1")
    assert vendor.security is None and fragment.security is None
    drifts = diff(fragment, vendor)
    assert facts(drifts) == VENDOR_DRIFT
    assert len(drifts) == len(VENDOR_DRIFT)
    by_path = {d.path: d for d in drifts}
    assert (by_path["responses/404/content"].old, by_path["responses/404/content"].new) == ("*/*", "application/json")
    assert (by_path["Error.context/additionalProperties"].old,
            by_path["Error.context/additionalProperties"].new) == ("any", "string")
    text = render_text(drifts, fragment, vendor)
    assert "0 would change a verdict, 6 tolerated" in text
    assert "CHANGES VERDICT" not in text


def test_vendor_document_as_a_fragment(vendor_path: Path) -> None:
    fragment = contract_fragment(vendor_path)
    assert fragment.documented_statuses == frozenset({200, 404, 409, 500})
    assert not fragment.response_has_body(200)
    assert all(fragment.response_has_body(s) for s in (404, 409, 500))
    assert fragment.response_schema_ref(409) == "#/components/schemas/Error"
    assert {"label", "remediationUrl", "message"} <= fragment.error_fields
    assert fragment.error_validator.is_valid({"message": "x", "label": "y"})
    assert not fragment.error_validator.is_valid({"message": 7})
    assert not fragment.error_is_valid({"message": 7})
    assert not fragment.error_is_valid({"context": {"component": 1}})
    assert set(fragment.schemas) == {"Error", "ErrorCause"}
    assert fragment.version == "9.0.2.0" and fragment.title == "VMware Cloud Foundation API Reference Guide"
