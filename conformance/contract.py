"""The cancel operation's contract, read from any local OpenAPI 2.0 or 3.x document.

`load_document` reads a file within size and nesting bounds; `extract_cancel` finds
DELETE /v1/tasks/{...} (or operationId cancelTask) and normalises what the checks care about
into one `CancelContract`, whichever OpenAPI version the document uses; `contract_fragment`
turns a document into a `conformance.spec.Fragment` the checks can read.

Every failure is one `SpecError` with a one-line message. Only `conformance.spec` is imported
from the package.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from conformance.errors import ContractError
from conformance.spec import OPERATION_ID, SAFE_LOADER, Fragment

MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 200
# Nodes after YAML aliases are expanded: an alias "bomb" is small on disk and huge in memory.
MAX_NODES = 20_000_000

_CANCEL_PATH = re.compile(r"^/v1/tasks/\{([^{}/]+)\}/?$")
_SCHEMA_PREFIXES = ("#/components/schemas/", "#/definitions/")
JSON_COMPATIBLE = re.compile(r"^application/(?:json|[^/;\s]+\+json)$")


class SpecError(ContractError):
    """The document cannot be read or interpreted; the message is a single line."""

    def __init__(self, message: str) -> None:
        super().__init__(clean_text(message))


# -- text hygiene ---------------------------------------------------------------------------------

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _is_control(char: str) -> bool:
    code = ord(char)
    # C0, DEL, C1, and the bidirectional/format controls that reorder what a reader sees.
    return code < 0x20 or 0x7F <= code <= 0x9F or unicodedata.category(char) in ("Cf", "Zl", "Zp")


def clean_text(text: object) -> str:
    """The text with every control character made visible as an escape (ESC becomes \\x1b)."""
    value = str(text)
    if not any(_is_control(c) for c in value):
        return value
    out = []
    for char in value:
        if not _is_control(char):
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def is_json_media_type(media: str) -> bool:
    return bool(JSON_COMPATIBLE.match(media.split(";", 1)[0].strip().lower()))


# -- reading --------------------------------------------------------------------------------------


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        if path.is_file() and path.stat().st_size > max_bytes:
            raise SpecError(f"{path}: larger than {max_bytes} bytes")
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # also bounds what a pipe or device yields
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise SpecError(f"{path}: larger than {max_bytes} bytes")
    return raw


def _yaml_depth_scan(text: str, name: str, max_depth: int) -> None:
    """Refuse deep YAML from its event stream, before the (recursive) composer sees it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise SpecError(f"{name}: nested deeper than {max_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not JSON or YAML: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def check_shape(root: Any, name: str = "document", max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Refuse a parsed document that is cyclic, deeper than max_depth, or larger than max_nodes.

    Iterative and memoised by identity, so YAML aliases cost one visit yet count fully.
    """
    memo: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if done:
            on_path.discard(key)
            height, size = 1, 1
            for child in _children(node):
                if isinstance(child, dict | list):
                    child_height, child_size = memo[id(child)]
                    height = max(height, child_height + 1)
                    size += child_size
                else:
                    size += 1
            if height > max_depth:
                raise SpecError(f"{name}: nested deeper than {max_depth} levels")
            if size > max_nodes:
                raise SpecError(f"{name}: more than {max_nodes} values (after YAML aliases)")
            memo[key] = (height, size)
            continue
        if key in memo:
            continue
        if key in on_path:
            raise SpecError(f"{name}: contains itself (a cyclic YAML alias)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if isinstance(child, dict | list))


def _parse(raw: bytes, name: str, max_depth: int) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"{name}: not UTF-8 text") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except RecursionError:
            raise SpecError(f"{name}: nested deeper than {max_depth} levels") from None
        except json.JSONDecodeError:
            pass  # perhaps YAML flow style; the YAML parser reports what is wrong
    _yaml_depth_scan(text, name, max_depth)
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except RecursionError:
        raise SpecError(f"{name}: nested deeper than {max_depth} levels") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not JSON or YAML: {_one_line(exc)}") from None


def openapi_version(document: Any, name: str = "document") -> str:
    """'2.0' or the document's 3.x version; SpecError for anything else."""
    if isinstance(document, dict):
        swagger, openapi = document.get("swagger"), document.get("openapi")
        if str(swagger) == "2.0" and isinstance(document.get("paths"), dict):
            return "2.0"
        if isinstance(openapi, str) and openapi.startswith("3.") and isinstance(document.get("paths"), dict):
            return openapi
    raise SpecError(f"{name}: not an OpenAPI 2.0 or 3.x document (no 'swagger: 2.0' or 'openapi: 3.x' with paths)")


def read_document(
    path: str | Path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> tuple[bytes, dict[str, Any]]:
    """The file's bytes and its parsed, bounds-checked OpenAPI document."""
    path = Path(path)
    name = clean_text(path.name)
    raw = _read_bytes(path, max_bytes)
    document = _parse(raw, name, max_depth)
    check_shape(document, name, max_depth)
    openapi_version(document, name)
    return raw, document


def load_document(path: str | Path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """A local OpenAPI 2.0 or 3.x document (JSON or YAML), refused when too big or too deep."""
    return read_document(path, max_bytes=max_bytes, max_depth=max_depth)[1]


# -- references -----------------------------------------------------------------------------------


def _pointer(document: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise SpecError(f"reference {ref!r} points outside the document; only local references are supported")
    node = document
    fragment = unquote(ref[1:])
    if fragment == "":
        return node
    if not fragment.startswith("/"):
        raise SpecError(f"reference {ref!r} is not a JSON pointer")
    for token in fragment[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise SpecError(f"reference {ref!r} does not resolve")
    return node


def _deref(document: Any, node: Any) -> Any:
    """Follow a chain of $ref objects (non-schema objects: responses, parameters, path items)."""
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise SpecError(f"reference {ref!r} refers to itself")
        seen.add(ref)
        node = _pointer(document, ref)
    return node


def schema_name(ref: str) -> str:
    """The name a schema reference is known by: 'Error' for '#/components/schemas/Error'."""
    for prefix in _SCHEMA_PREFIXES:
        rest = ref[len(prefix) :]
        if ref.startswith(prefix) and "/" not in rest:
            return unquote(rest).replace("~1", "/").replace("~0", "~")
    return ref


class _Schemas:
    """Copies schemas out of a document with every $ref rewritten to {'$ref': name}.

    Named schemas are copied once each (cycle-safe: Error.nestedErrors refers to Error).
    """

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.named: dict[str, Any] = {}
        self._refs: dict[str, str] = {}  # name -> the ref it was read from
        self._pending: list[str] = []

    def copy(self, node: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise SpecError(f"a schema is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                return {"$ref": self._name(ref)}
            return {str(k): self.copy(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.copy(v, depth + 1) for v in node]
        return node

    def _name(self, ref: str) -> str:
        name = schema_name(ref)
        known = self._refs.setdefault(name, ref)
        if known != ref:
            name = ref  # two references share a last segment: keep them apart
            self._refs.setdefault(name, ref)
        if name not in self.named:
            self.named[name] = None  # placeholder until resolved: breaks cycles
            self._pending.append(name)
        return name

    def resolve_all(self) -> dict[str, Any]:
        while self._pending:
            name = self._pending.pop()
            target = _pointer(self.document, self._refs[name])
            self.named[name] = self.copy(target)
        return self.named


# -- the normalised contract ----------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseContract:
    description: str
    media_types: tuple[str, ...]  # empty: no body documented
    schema: Any  # normalised schema ({'$ref': name} or inline), None without a body


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    type: str | None


@dataclass(frozen=True)
class CancelContract:
    """What the checks depend on, identical in shape for OpenAPI 2.0 and 3.x."""

    title: str
    version: str
    openapi: str
    method: str
    path: str
    operation_id: str | None
    responses: dict[str, ResponseContract]
    # None: no requirement anywhere; else alternatives, each a sorted tuple of (scheme, scopes).
    security: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None
    id_parameter: Parameter | None
    parameters: dict[str, Parameter]  # the others, keyed "in/name"
    schemas: dict[str, Any] = field(repr=False)  # every named schema reachable, normalised
    sha256: str | None = None
    source: str | None = None

    def resolve(self, node: Any) -> tuple[str | None, Any]:
        """(schema name or None, schema object) for a normalised schema node."""
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            name = node["$ref"]
            return name, self.schemas.get(name)
        return None, node


def _find_operation(document: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(method, full path template, path item, operation) of the cancel operation."""
    base = ""
    if document.get("swagger") is not None and isinstance(document.get("basePath"), str):
        base = document["basePath"].rstrip("/")
    by_path: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    by_id: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for raw_path, raw_item in document["paths"].items():
        item = _deref(document, raw_item)
        if not isinstance(item, dict):
            continue
        full = base + str(raw_path)
        for method, operation in item.items():
            if not isinstance(operation, dict) or str(method).lower() not in _METHODS:
                continue
            found = (str(method).upper(), full, item, operation)
            if str(method).lower() == "delete" and _CANCEL_PATH.match(full):
                by_path.append(found)
            if operation.get("operationId") == OPERATION_ID:
                by_id.append(found)
    for candidate in by_path:
        if candidate in by_id:
            return candidate
    if by_path or by_id:
        return (by_path or by_id)[0]
    raise SpecError(f"no cancel operation (DELETE /v1/tasks/{{id}} or operationId {OPERATION_ID})")


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _parameters(document: dict[str, Any], item: dict[str, Any], operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for source in (item.get("parameters") or [], operation.get("parameters") or []):
        if not isinstance(source, list):
            raise SpecError("parameters is not a list")
        for raw in source:
            param = _deref(document, raw)
            if not isinstance(param, dict) or "name" not in param or "in" not in param:
                raise SpecError("a parameter has no name or no 'in'")
            merged[f"{param['in']}/{param['name']}"] = param
    return merged


def _param_type(document: dict[str, Any], param: dict[str, Any]) -> str | None:
    schema = _deref(document, param.get("schema")) if "schema" in param else param
    value = schema.get("type") if isinstance(schema, dict) else None
    return None if value is None else str(value)


def _security(document: dict[str, Any], operation: dict[str, Any]) -> Any:
    requirements = operation["security"] if "security" in operation else document.get("security")
    if requirements is None:
        return None
    if not isinstance(requirements, list):
        raise SpecError("security is not a list of requirements")
    alternatives = set()
    for requirement in requirements:
        if not isinstance(requirement, dict):
            raise SpecError("a security requirement is not an object")
        alternatives.add(
            tuple(sorted((str(k), tuple(sorted(str(s) for s in (v or [])))) for k, v in requirement.items()))
        )
    return tuple(sorted(alternatives))


def _produces(document: dict[str, Any], operation: dict[str, Any]) -> tuple[str, ...]:
    produces = operation.get("produces", document.get("produces"))
    # OpenAPI 2.0 leaves the media type open when nothing declares it.
    return tuple(str(p) for p in produces) if produces else ("*/*",)


def extract_cancel(document: dict[str, Any], *, raw: bytes | None = None, source: str | None = None) -> CancelContract:
    """The cancel operation's contract from an OpenAPI 2.0 or 3.x document."""
    version = openapi_version(document)
    method, path, item, operation = _find_operation(document)
    schemas = _Schemas(document)

    responses_raw = operation.get("responses")
    if not isinstance(responses_raw, dict) or not responses_raw:
        raise SpecError(f"{method} {path} documents no responses")
    responses: dict[str, ResponseContract] = {}
    for status, raw_response in responses_raw.items():
        response = _deref(document, raw_response)
        if not isinstance(response, dict):
            raise SpecError(f"response {status} is not an object")
        description = str(response.get("description", ""))
        if version == "2.0":
            if "schema" in response:
                schema = schemas.copy(response["schema"])
                responses[str(status)] = ResponseContract(description, _produces(document, operation), schema)
            else:
                responses[str(status)] = ResponseContract(description, (), None)
            continue
        content = response.get("content") or {}
        if not isinstance(content, dict):
            raise SpecError(f"response {status} content is not an object")
        media_types = tuple(str(m) for m in content)
        # The schema the checks validate with: the first JSON-compatible media type's, else the first's.
        ordered = sorted(content, key=lambda m: not is_json_media_type(str(m)))
        schema = None
        for media in ordered:
            body = content[media]
            if isinstance(body, dict) and "schema" in body:
                schema = schemas.copy(body["schema"])
                break
        responses[str(status)] = ResponseContract(description, media_types, schema)

    params = _parameters(document, item, operation)
    template = _CANCEL_PATH.match(path)
    id_name = template.group(1) if template else None
    id_parameter = None
    others: dict[str, Parameter] = {}
    for key, param in params.items():
        normalised = Parameter(str(param["name"]), str(param["in"]), bool(param.get("required", False)),
                               _param_type(document, param))
        if param["in"] == "path" and (id_name is None or param["name"] == id_name):
            id_parameter = id_parameter or normalised
        else:
            others[key] = normalised

    info: dict[str, Any] = document["info"] if isinstance(document.get("info"), dict) else {}
    return CancelContract(
        title=str(info.get("title", "")),
        version=str(info.get("version", "")),
        openapi=version,
        method=method,
        path=path,
        operation_id=None if operation.get("operationId") is None else str(operation["operationId"]),
        responses=responses,
        security=_security(document, operation),
        id_parameter=id_parameter,
        parameters=others,
        schemas=schemas.resolve_all(),
        sha256=hashlib.sha256(raw).hexdigest() if raw is not None else None,
        source=source,
    )


def load_contract(path: str | Path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> CancelContract:
    """load_document + extract_cancel, keeping the file's sha256 and name."""
    raw, document = read_document(path, max_bytes=max_bytes, max_depth=max_depth)
    return extract_cancel(document, raw=raw, source=Path(path).name)


# -- a Fragment the checks can read ---------------------------------------------------------------

_COMPONENT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _component_ref(name: str) -> str:
    if not _COMPONENT_NAME.match(name):
        raise SpecError(f"schema reference {name!r} is not a named schema under components/schemas or definitions")
    return f"#/components/schemas/{name}"


def _as_components(node: Any) -> Any:
    """A normalised schema with {'$ref': name} turned back into component references."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and len(node) == 1:
            return {"$ref": _component_ref(node["$ref"])}
        return {k: _as_components(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_as_components(v) for v in node]
    return node


def _is_object_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and (schema.get("type") == "object" or isinstance(schema.get("properties"), dict))


def fragment_document(contract: CancelContract) -> dict[str, Any]:
    """The contract as a small OpenAPI 3 document shaped like openapi/cancel-task.yaml.

    The id parameter is renamed to {id} (the URL on the wire is the same) and the operation is
    given operationId cancelTask, the names `conformance.spec.Fragment` and the target look for.
    Error and ErrorCause are aliased when the document names them differently.
    """
    statuses: dict[str, Any] = {}
    body_refs: set[str] = set()
    for status, response in contract.responses.items():
        if not status.isdigit() or len(status) != 3:
            raise SpecError(f"response {status!r} is not a status code the checks can judge")
        entry: dict[str, Any] = {"description": response.description}
        if response.media_types:
            name, _ = contract.resolve(response.schema)
            if name is None:
                raise SpecError(f"response {status} documents a body without a named schema the checks can use")
            body_refs.add(name)
            entry["content"] = {m: {"schema": {"$ref": _component_ref(name)}} for m in response.media_types}
        statuses[status] = entry
    if not body_refs:
        raise SpecError("no response documents an Error body")
    if len(body_refs) > 1:
        raise SpecError(f"responses document different body schemas ({', '.join(sorted(body_refs))}); "
                        "the checks validate every documented body against one Error schema")
    error_name = body_refs.pop()

    schemas = {name: _as_components(schema) for name, schema in contract.schemas.items()}
    error = schemas.get(error_name)
    if not _is_object_schema(error):
        raise SpecError(f"the error responses' schema {error_name!r} is not an object schema")
    assert isinstance(error, dict)
    causes = (error.get("properties") or {}).get("causes")
    cause_ref = ((causes or {}).get("items") or {}).get("$ref") if isinstance(causes, dict) else None
    cause_name = schema_name(cause_ref) if isinstance(cause_ref, str) else None
    for alias, actual in (("Error", error_name), ("ErrorCause", cause_name)):
        if actual is None:
            raise SpecError(f"no {alias}-like schema (Error.causes items) for the checks to read")
        if alias not in schemas or schemas[alias] is schemas[actual]:
            schemas[alias] = schemas[actual]
        elif alias != actual:
            raise SpecError(f"{alias!r} names a schema other than the one the error responses use ({actual!r})")

    path = contract.path
    parameters: list[dict[str, Any]] = []
    if contract.id_parameter is not None:
        id_param = contract.id_parameter
        if _CANCEL_PATH.match(path):
            path = "/v1/tasks/{id}"
            id_param = Parameter("id", id_param.location, id_param.required, id_param.type)
        parameters.append(_parameter_object(id_param))
    parameters.extend(_parameter_object(p) for p in contract.parameters.values())

    operation: dict[str, Any] = {"operationId": OPERATION_ID, "parameters": parameters, "responses": statuses}
    if contract.operation_id != OPERATION_ID:
        operation["x-original-operation-id"] = contract.operation_id
    if path != contract.path:
        operation["x-original-path"] = contract.path
    if contract.security is not None:
        operation["security"] = [{k: list(v) for k, v in alt} for alt in contract.security]
    return {
        "openapi": "3.0.3" if contract.openapi == "2.0" else contract.openapi,
        "info": {"title": contract.title, "version": contract.version, "x-source-openapi": contract.openapi},
        "paths": {path: {contract.method.lower(): operation}},
        "components": {"schemas": schemas},
    }


def _parameter_object(param: Parameter) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location, "required": param.required}
    if param.type is not None:
        out["schema"] = {"type": param.type}
    return out


def contract_fragment(path: str | Path, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Fragment:
    """A `Fragment` read from any OpenAPI 2.0/3.x document, for `run --spec FILE`.

    sha256 is the given file's; the document is `fragment_document(...)` of its cancel operation.
    SpecError when the checks could not interpret the contract.
    """
    raw, document = read_document(path, max_bytes=max_bytes, max_depth=max_depth)
    contract = extract_cancel(document, raw=raw, source=Path(path).name)
    fragment = Fragment(path=Path(path), raw_bytes=raw, document=copy.deepcopy(fragment_document(contract)))
    try:
        fragment.documented_statuses  # noqa: B018 - computed now so a bad document fails here
        fragment.error_fields  # noqa: B018
        fragment.cause_fields  # noqa: B018
        fragment.error_validator.is_valid({})  # resolves the references once
    except SpecError:
        raise
    except Exception as exc:  # jsonschema/referencing errors have no common base
        raise SpecError(f"{Path(path).name}: the checks cannot use its Error schema: {_one_line(exc)}") from None
    return fragment


def run_contract(path: str | Path | None = None) -> Fragment:
    """The contract one run checks against: the shipped fragment, or `contract_fragment(path)`.

    Refuses (SpecError) a contract whose operation path has no `{id}` segment: the suite fills
    that segment with every id it sends, so without it no request could name a task.
    """
    if path is None:
        from conformance.spec import load_fragment

        return load_fragment()
    fragment = contract_fragment(path)
    if fragment.path_template.count("{id}") != 1:
        raise SpecError(f"{Path(path).name}: the cancel operation's path {fragment.path_template!r} "
                        "has no single {{id}} segment for the task id")
    return fragment
