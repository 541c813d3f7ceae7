"""The OpenAPI fragment: valid, faithful to the seed page, and in step with VMware's published document."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from conftest import SEED_TEXT, VENDOR_DOCUMENT
from openapi_spec_validator import validate

from conformance.spec import OPERATION_ID, fragment_path, load_fragment

ERROR_STATUSES = ("404", "409", "500")
ERROR_REF = "#/components/schemas/Error"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(yaml.safe_load(fragment_path().read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def operation(document: dict[str, Any]) -> dict[str, Any]:
    return dict(document["paths"]["/v1/tasks/{id}"]["delete"])


@pytest.fixture(scope="module")
def seed_text() -> str:
    if not SEED_TEXT.is_file():
        pytest.skip(f"seed page not found at {SEED_TEXT}")
    return SEED_TEXT.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def vendor() -> dict[str, Any]:
    if not VENDOR_DOCUMENT.is_file():
        pytest.skip(f"vendor OpenAPI document not found at {VENDOR_DOCUMENT}")
    return dict(json.loads(VENDOR_DOCUMENT.read_text(encoding="utf-8")))


# -- the seed page, parsed -----------------------------------------------------------------------

# The page lists each Error field as three lines: "<type>", "<name>", "Optional" (the path
# parameter, the only "Required" one, is not an Error field).
_FIELD = re.compile(r"^(string|object|array of [A-Za-z]+)\n([A-Za-z]+)\nOptional$", re.MULTILINE)


def seed_error_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for kind, name in _FIELD.findall(text):
        assert fields.setdefault(name, kind) == kind, f"the seed lists {name} with two types"
    return fields


def seed_example(text: str) -> dict[str, Any]:
    start = text.index("{", text.index("Returns Error of type(s) */*"))
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return dict(value)


def signature(schema: dict[str, Any]) -> str:
    """A schema's shape in the seed's words: "string", "object", "array of ErrorCause"..."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return "array of " + signature(schema.get("items") or {})
    return str(schema.get("type"))


# -- structure -----------------------------------------------------------------------------------

def test_fragment_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_the_suite_loads_this_file(document: dict[str, Any]) -> None:
    fragment = load_fragment()
    assert fragment.document == document
    assert (fragment.method, fragment.path_template) == ("DELETE", "/v1/tasks/{id}")


def test_operation(operation: dict[str, Any]) -> None:
    assert operation["operationId"] == OPERATION_ID
    [parameter] = operation["parameters"]
    assert parameter["name"] == "id" and parameter["in"] == "path" and parameter["required"] is True
    assert parameter["schema"] == {"type": "string"}


def test_four_responses(operation: dict[str, Any]) -> None:
    assert set(operation["responses"]) == {"200", "404", "409", "500"}
    assert load_fragment().documented_statuses == {200, 404, 409, 500}


def test_200_has_no_content(operation: dict[str, Any]) -> None:
    assert "content" not in operation["responses"]["200"]
    assert not load_fragment().response_has_body(200)


@pytest.mark.parametrize("status", ERROR_STATUSES)
def test_errors_reference_error_under_any_media_type(operation: dict[str, Any], status: str) -> None:
    content = operation["responses"][status]["content"]
    assert content == {"*/*": {"schema": {"$ref": ERROR_REF}}}


def test_error_is_recursive(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    error = schemas["Error"]
    assert error["type"] == "object"
    assert error["properties"]["nestedErrors"] == {
        "type": "array",
        "description": error["properties"]["nestedErrors"]["description"],
        "items": {"$ref": ERROR_REF},
    }
    assert error["properties"]["causes"]["items"] == {"$ref": "#/components/schemas/ErrorCause"}
    cause = schemas["ErrorCause"]
    assert cause["type"] == "object"
    assert {name: p["type"] for name, p in cause["properties"].items()} == {"message": "string", "type": "string"}


def test_every_field_optional_and_open(document: dict[str, Any]) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert "required" not in node or not isinstance(node["required"], list), node
            # Newer builds add fields: closing the schema would fail real servers.
            assert node.get("additionalProperties", True) is not False, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document["components"]["schemas"])


# -- faithful to the seed page ---------------------------------------------------------------------

def test_every_seed_field_with_the_seed_type(seed_text: str, document: dict[str, Any]) -> None:
    fields = seed_error_fields(seed_text)
    assert set(fields) == {
        "arguments", "causes", "context", "errorCode", "errorType", "message", "nestedErrors",
        "referenceToken", "remediationMessage",
    }
    properties = document["components"]["schemas"]["Error"]["properties"]
    assert {name: signature(properties[name]) for name in fields} == fields
    assert set(properties) == set(fields), "the fragment's Error must list exactly the seed's fields"


def test_example_fields_are_in_the_schemas(seed_text: str, document: dict[str, Any]) -> None:
    example = seed_example(seed_text)
    schemas = document["components"]["schemas"]
    assert set(example) <= set(schemas["Error"]["properties"])
    assert set(example["causes"][0]) <= set(schemas["ErrorCause"]["properties"])
    for name, value in example.items():
        expected = {"list": "array", "str": "string", "dict": "object"}[type(value).__name__]
        assert schemas["Error"]["properties"][name]["type"] == expected, name
    for name in example["causes"][0]:
        assert schemas["ErrorCause"]["properties"][name]["type"] == "string"


def test_descriptions_are_quoted_from_the_seed(seed_text: str, operation: dict[str, Any],
                                               document: dict[str, Any]) -> None:
    quoted = [response["description"] for response in operation["responses"].values()]
    quoted += [operation["description"], operation["parameters"][0]["description"]]
    quoted.append(operation["responses"]["200"]["x-seed-body"])
    quoted += [p["description"] for p in document["components"]["schemas"]["Error"]["properties"].values()]
    for text in quoted:
        assert text in seed_text, f"not verbatim in the seed: {text!r}"


# -- in step with VMware's published document --------------------------------------------------------

def _vendor_operation(vendor: dict[str, Any]) -> dict[str, Any]:
    for item in vendor["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == OPERATION_ID:
                return operation
    raise AssertionError(f"the vendor document has no {OPERATION_ID}")


def test_vendor_same_response_codes(vendor: dict[str, Any], operation: dict[str, Any]) -> None:
    assert set(_vendor_operation(vendor)["responses"]) == set(operation["responses"])


def test_vendor_has_every_seed_field_with_the_same_type(vendor: dict[str, Any], seed_text: str) -> None:
    schemas = vendor["components"]["schemas"]
    error = schemas["Error"]["properties"]
    for name, kind in seed_error_fields(seed_text).items():
        assert name in error, f"vendor Error lacks {name}"
        assert signature(error[name]) == kind, name
    cause = schemas["ErrorCause"]["properties"]
    for name in seed_example(seed_text)["causes"][0]:
        assert signature(cause[name]) == "string", name
