"""Drift between the shipped fragment's cancel contract and another OpenAPI document's.

`diff(old, new)` lists every difference that matters to the checks, each labelled `tolerated`
when the suite already copes with it (its verdicts stay right) and not tolerated when it would
change a verdict. Schema annotations (description, title, readOnly, example, x-*) are not
compared: no check reads them. Response descriptions are compared and tolerated.

Paths read like `responses/409`, `responses/404/content`, `security`, `parameters/id/name`, and,
inside schemas, `Error.nestedErrors[].causes[].message` (`.field` = a property, `[]` = array
items, `.*` = values of additionalProperties, `/keyword` = a schema keyword such as
`Error.context/additionalProperties`). A named schema pair is compared once, at the first (shortest) path that
reaches it, so recursive schemas terminate.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from conformance.contract import (
    CancelContract,
    Parameter,
    SpecError,
    clean_text,
    contract_fragment,
    extract_cancel,
    is_json_media_type,
    load_contract,
    load_document,
)

__all__ = [
    "CancelContract",
    "Drift",
    "SpecError",
    "contract_fragment",
    "diff",
    "extract_cancel",
    "load_contract",
    "load_document",
    "render_json",
    "render_markdown",
    "render_text",
]

ADDED, REMOVED, RETYPED, CHANGED = "added", "removed", "retyped", "changed"

# Keywords that change which instances validate; everything else is an annotation.
_VALIDATION_KEYWORDS = (
    "format", "pattern", "enum", "const", "nullable", "multipleOf",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "discriminator",
)  # fmt: skip
_COMPOSITIONS = ("allOf", "anyOf", "oneOf")

WHY_STATUS_REMOVED = "a documented status is gone: a check or scenario that expects it would judge differently"
WHY_STATUS_ADDED = "an undocumented status in the fragment: SCH-STATUS fails a server that sends it"
WHY_DESCRIPTION = "wording only: no check reads descriptions"
WHY_MEDIA_JSON = "JSON is acceptable under */*; SCH-ERROR-MEDIA already expects a JSON label"
WHY_MEDIA_OTHER = "not JSON-compatible: the checks judge Error bodies as JSON"
WHY_BODY = "whether a body is documented decides SCH-200-EMPTY and SCH-ERROR-BODY"
WHY_FIELD_ADDED = "extra fields are allowed: the suite reports unknown Error fields as information (SCH-EXTENSIONS)"
WHY_FIELD_ADDED_REQUIRED = "a new required field: bodies without it pass the fragment but not this document"
WHY_FIELD_REMOVED = "a documented field is gone: bodies would be judged by a schema that no longer types it"
WHY_RETYPED = "values valid under one document fail under the other"
WHY_REQUIRED = "which fields are required decides whether a body validates"
WHY_ADDITIONAL_FALSE = "additionalProperties: false rejects the extra fields the suite accepts as information"
WHY_ADDITIONAL_NARROWER = "values of a free-form object typed more narrowly: every value it allows the fragment accepts"
WHY_ADDITIONAL_OTHER = "the values allowed beside the documented fields change"
WHY_KEYWORD = "a validation keyword changes which values are valid"
WHY_SECURITY = "authentication decides which answer a request gets (401/403 instead of 404/409)"
WHY_PARAMETER = "the id parameter decides the request the suite sends"
WHY_PARAMETER_OPTIONAL = "an optional parameter the suite does not send"
WHY_PARAMETER_REQUIRED = "a required parameter the suite does not send"


@dataclass(frozen=True)
class Drift:
    path: str
    kind: str  # added | removed | retyped | changed
    old: str | None
    new: str | None
    tolerated: bool
    why: str


# -- describing values ----------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _member(path: str, name: str) -> str:
    return f"{path}.{name}" if _IDENTIFIER.match(name) else f"{path}[{json.dumps(name)}]"


def _type_of(schema: Any) -> str | None:
    if not isinstance(schema, dict) or "type" not in schema:
        return None
    value = schema["type"]
    return " | ".join(sorted(str(v) for v in value)) if isinstance(value, list) else str(value)


def _describe(contract: CancelContract, node: Any) -> str:
    name, schema = contract.resolve(node)
    if name is not None:
        return name
    kind = _type_of(schema) or "any"
    if kind == "array" and isinstance(schema, dict) and "items" in schema:
        return f"array of {_describe(contract, schema['items'])}"
    return kind


def _additional(schema: dict[str, Any]) -> Any:
    value = schema.get("additionalProperties", True)
    return True if value == {} else value


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _security_text(security: Any) -> str | None:
    if security is None:
        return None
    if not security:
        return "[] (none)"
    alternatives = []
    for alternative in security:
        parts = [f"{scheme}[{', '.join(scopes)}]" if scopes else scheme for scheme, scopes in alternative]
        alternatives.append(" + ".join(parts) or "{} (anonymous)")
    return " | ".join(alternatives)


# -- the comparison -------------------------------------------------------------------------------


class _SchemaDiff:
    def __init__(self, old: CancelContract, new: CancelContract, drifts: list[Drift]) -> None:
        self.old, self.new, self.drifts = old, new, drifts
        self.seen: set[tuple[int, int]] = set()
        self.queue: deque[tuple[Any, Any, str]] = deque()

    def add(self, path: str, kind: str, old: Any, new: Any, tolerated: bool, why: str) -> None:
        self.drifts.append(Drift(path, kind, None if old is None else str(old), None if new is None else str(new),
                                 tolerated, why))

    def enqueue(self, old_node: Any, new_node: Any, path: str) -> None:
        self.queue.append((old_node, new_node, path))

    def run(self) -> None:
        # Breadth first: each pair of schemas is reported at the shortest path that reaches it.
        while self.queue:
            self.compare(*self.queue.popleft())

    def compare(self, old_node: Any, new_node: Any, path: str) -> None:
        _, old = self.old.resolve(old_node)
        _, new = self.new.resolve(new_node)
        if not isinstance(old, dict) or not isinstance(new, dict):
            if _json(old) != _json(new):
                self.add(path, CHANGED, _json(old), _json(new), False, WHY_KEYWORD)
            return
        pair = (id(old), id(new))
        if pair in self.seen:
            return
        self.seen.add(pair)

        old_type, new_type = _type_of(old), _type_of(new)
        if old_type != new_type:
            self.add(path, RETYPED, old_type, new_type, False, WHY_RETYPED)
        for keyword in _VALIDATION_KEYWORDS:
            if _json(old.get(keyword)) != _json(new.get(keyword)):
                self.add(f"{path}/{keyword}", CHANGED, _maybe_json(old, keyword), _maybe_json(new, keyword),
                         False, WHY_KEYWORD)
        self._compositions(old, new, path)
        if "not" in old and "not" in new:
            self.enqueue(old["not"], new["not"], f"{path}/not")
        elif "not" in old or "not" in new:
            self.add(f"{path}/not", CHANGED, _maybe_json(old, "not"), _maybe_json(new, "not"), False, WHY_KEYWORD)
        self._items(old, new, path)
        self._properties(old, new, path)
        self._additional(old, new, path)

    def _compositions(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        for keyword in _COMPOSITIONS:
            old_list, new_list = old.get(keyword), new.get(keyword)
            if old_list is None and new_list is None:
                continue
            if not isinstance(old_list, list) or not isinstance(new_list, list) or len(old_list) != len(new_list):
                self.add(f"{path}/{keyword}", CHANGED, _count(old_list), _count(new_list), False, WHY_KEYWORD)
                continue
            for index, (a, b) in enumerate(zip(old_list, new_list, strict=True)):
                self.enqueue(a, b, f"{path}/{keyword}/{index}")

    def _items(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        if "items" in old and "items" in new:
            self.enqueue(old["items"], new["items"], f"{path}[]")
        elif "items" in old:
            self.add(f"{path}[]", REMOVED, _describe(self.old, old["items"]), None, False, WHY_RETYPED)
        elif "items" in new:
            self.add(f"{path}[]", ADDED, None, _describe(self.new, new["items"]), False, WHY_RETYPED)

    def _properties(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_props: dict[str, Any] = old["properties"] if isinstance(old.get("properties"), dict) else {}
        new_props: dict[str, Any] = new["properties"] if isinstance(new.get("properties"), dict) else {}
        old_required = {str(r) for r in old.get("required") or []}
        new_required = {str(r) for r in new.get("required") or []}
        for name in old_props:
            if name in new_props:
                self.enqueue(old_props[name], new_props[name], _member(path, name))
            else:
                self.add(_member(path, name), REMOVED, _describe(self.old, old_props[name]), None, False,
                         WHY_FIELD_REMOVED)
        for name in new_props:
            if name in old_props:
                continue
            described = _describe(self.new, new_props[name])
            if name in new_required:
                self.add(_member(path, name), ADDED, None, f"{described} (required)", False, WHY_FIELD_ADDED_REQUIRED)
            elif _additional(old) is False:
                self.add(_member(path, name), ADDED, None, described, False, WHY_ADDITIONAL_FALSE)
            else:
                self.add(_member(path, name), ADDED, None, described, True, WHY_FIELD_ADDED)
        for name in sorted(old_required ^ new_required):
            if name in new_props and name not in old_props:
                continue  # reported as an added required field
            before = "required" if name in old_required else "optional"
            after = "required" if name in new_required else "optional"
            self.add(_member(path, name), CHANGED, before, after, False, WHY_REQUIRED)

    def _additional(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        old_extra, new_extra = _additional(old), _additional(new)
        if old_extra is True and new_extra is True:
            return
        where = f"{path}/additionalProperties"
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.enqueue(old_extra, new_extra, f"{path}.*")
        elif new_extra is False and old_extra is not False:
            self.add(where, CHANGED, _extra_text(self.old, old_extra), "false", False, WHY_ADDITIONAL_FALSE)
        elif old_extra is True and isinstance(new_extra, dict):
            self.add(where, CHANGED, "any", _describe(self.new, new_extra), True, WHY_ADDITIONAL_NARROWER)
        else:
            self.add(where, CHANGED, _extra_text(self.old, old_extra), _extra_text(self.new, new_extra), False,
                     WHY_ADDITIONAL_OTHER)


def _extra_text(contract: CancelContract, value: Any) -> str:
    if value is True:
        return "any"
    if value is False:
        return "false"
    return _describe(contract, value)


def _maybe_json(schema: dict[str, Any], keyword: str) -> str | None:
    return _json(schema[keyword]) if keyword in schema else None


def _count(value: Any) -> str | None:
    return None if value is None else f"{len(value) if isinstance(value, list) else '?'} alternatives"


def _schema_root(contract: CancelContract, node: Any, status: str) -> str:
    name, _ = contract.resolve(node)
    return name if name is not None else f"responses/{status}/schema"


def _status_key(status: str) -> tuple[int, str]:
    return (int(status), status) if status.isdigit() else (1000, status)


def diff(old: CancelContract, new: CancelContract) -> list[Drift]:
    """Every drift from old (usually the shipped fragment) to new (usually a vendor document)."""
    drifts: list[Drift] = []
    schemas = _SchemaDiff(old, new, drifts)

    for status in sorted(set(old.responses) | set(new.responses), key=_status_key):
        where = f"responses/{status}"
        before, after = old.responses.get(status), new.responses.get(status)
        if after is None:
            drifts.append(Drift(where, REMOVED, before.description if before else None, None, False,
                                WHY_STATUS_REMOVED))
            continue
        if before is None:
            drifts.append(Drift(where, ADDED, None, after.description, False, WHY_STATUS_ADDED))
            continue
        if before.description != after.description:
            drifts.append(Drift(f"{where}/description", CHANGED, before.description, after.description, True,
                                WHY_DESCRIPTION))
        if bool(before.media_types) != bool(after.media_types):
            drifts.append(Drift(f"{where}/content", ADDED if after.media_types else REMOVED,
                                ", ".join(before.media_types) or None, ", ".join(after.media_types) or None,
                                False, WHY_BODY))
            continue
        if set(before.media_types) != set(after.media_types):
            json_only = all(is_json_media_type(m) for m in after.media_types)
            why = WHY_MEDIA_JSON if json_only else WHY_MEDIA_OTHER
            drifts.append(Drift(f"{where}/content", CHANGED, ", ".join(before.media_types),
                                ", ".join(after.media_types), json_only, why))
        if before.schema is not None and after.schema is not None:
            schemas.enqueue(before.schema, after.schema, _schema_root(old, before.schema, status))
        elif before.schema is not None or after.schema is not None:
            drifts.append(Drift(f"{where}/schema", ADDED if after.schema is not None else REMOVED,
                                _describe(old, before.schema) if before.schema is not None else None,
                                _describe(new, after.schema) if after.schema is not None else None,
                                False, WHY_RETYPED))
    schemas.run()

    old_security, new_security = _security_text(old.security), _security_text(new.security)
    if old_security != new_security:
        kind = ADDED if old_security is None else REMOVED if new_security is None else CHANGED
        drifts.append(Drift("security", kind, old_security, new_security, False, WHY_SECURITY))

    drifts.extend(_parameter_drifts(old.id_parameter, new.id_parameter))
    for key in sorted(set(old.parameters) | set(new.parameters)):
        a, b = old.parameters.get(key), new.parameters.get(key)
        if a == b:
            continue
        required = bool((a and a.required) or (b and b.required))
        kind = ADDED if a is None else REMOVED if b is None else CHANGED
        drifts.append(Drift(f"parameters/{key}", kind, _parameter_text(a), _parameter_text(b), not required,
                            WHY_PARAMETER_REQUIRED if required else WHY_PARAMETER_OPTIONAL))
    return drifts


def _parameter_text(param: Parameter | None) -> str | None:
    if param is None:
        return None
    return f"{param.location} {param.name}: {param.type or 'any'}{' (required)' if param.required else ''}"


def _parameter_drifts(old: Parameter | None, new: Parameter | None) -> list[Drift]:
    if old is None and new is None:
        return []
    if old is None or new is None:
        kind = ADDED if old is None else REMOVED
        return [Drift("parameters/id", kind, _parameter_text(old), _parameter_text(new), False, WHY_PARAMETER)]
    drifts = []
    for attribute, kind in (("name", CHANGED), ("location", CHANGED), ("required", CHANGED), ("type", RETYPED)):
        before, after = getattr(old, attribute), getattr(new, attribute)
        if before != after:
            drifts.append(Drift(f"parameters/id/{attribute}", kind, str(before), str(after), False, WHY_PARAMETER))
    return drifts


# -- rendering ------------------------------------------------------------------------------------

_COLUMNS = ("verdict", "kind", "path", "old", "new", "why")


def _row(drift: Drift) -> tuple[str, ...]:
    return (
        "tolerated" if drift.tolerated else "CHANGES VERDICT",
        clean_text(drift.kind),
        clean_text(drift.path),
        "-" if drift.old is None else clean_text(drift.old),
        "-" if drift.new is None else clean_text(drift.new),
        clean_text(drift.why),
    )


def _heading(old: CancelContract | None, new: CancelContract | None) -> str | None:
    if old is None or new is None:
        return None
    return clean_text(f"{old.title} {old.version} -> {new.title} {new.version}")


def _summary(drifts: Sequence[Drift]) -> str:
    breaking = sum(not d.tolerated for d in drifts)
    return f"{len(drifts)} drift(s): {breaking} would change a verdict, {len(drifts) - breaking} tolerated"


def render_text(drifts: Sequence[Drift], old: CancelContract | None = None, new: CancelContract | None = None,
                *, width: int = 60) -> str:
    """An aligned plain-text table (old/new cells longer than width are cut with …)."""
    lines = []
    heading = _heading(old, new)
    if heading:
        lines.append(heading)
    if not drifts:
        lines.append("no drift")
        return "\n".join(lines) + "\n"
    rows = [tuple(c.upper() for c in _COLUMNS)] + [
        tuple(c if i not in (3, 4) or len(c) <= width else c[: width - 1] + "…" for i, c in enumerate(_row(d)))
        for d in drifts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    lines.append(_summary(drifts))
    return "\n".join(lines) + "\n"


def _document(contract: CancelContract | None) -> dict[str, Any] | None:
    if contract is None:
        return None
    return {
        "title": clean_text(contract.title),
        "version": clean_text(contract.version),
        "openapi": clean_text(contract.openapi),
        "sha256": contract.sha256,
        "source": None if contract.source is None else clean_text(contract.source),
        "operation": clean_text(f"{contract.method} {contract.path}"),
    }


def render_json(drifts: Sequence[Drift], old: CancelContract | None = None, new: CancelContract | None = None) -> str:
    """{"old": {...}, "new": {...}, "drifts": [...], "breaking": n, "tolerated": n}, every string cleaned."""
    cleaned = [
        {k: (clean_text(v) if isinstance(v, str) else v) for k, v in asdict(d).items()} for d in drifts
    ]
    breaking = sum(not d.tolerated for d in drifts)
    payload = {"old": _document(old), "new": _document(new), "drifts": cleaned,
               "breaking": breaking, "tolerated": len(drifts) - breaking}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def markdown_cell(text: str) -> str:
    """Text safe in a GitHub/GitLab table cell: no raw | or newline, no HTML, no emphasis."""
    text = clean_text(text)  # newlines become the two characters \n
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_markdown(drifts: Sequence[Drift], old: CancelContract | None = None,
                    new: CancelContract | None = None) -> str:
    """A merge-request table: one row per drift, verdict-changing rows first."""
    lines = []
    heading = _heading(old, new)
    if heading:
        lines.append(f"**Spec drift:** {markdown_cell(heading)}")
        lines.append("")
    if not drifts:
        lines.append("No drift.")
        return "\n".join(lines) + "\n"
    lines.append("| Verdict | Kind | Path | Old | New | Why |")
    lines.append("|---|---|---|---|---|---|")
    for drift in sorted(drifts, key=lambda d: d.tolerated):
        cells = [markdown_cell(c) for c in _row(drift)]
        cells[0] = "✅ tolerated" if drift.tolerated else "❌ **changes verdict**"
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(_summary(drifts) + ".")
    return "\n".join(lines) + "\n"
