"""The OpenAPI fragment: the single source of truth for documented statuses and the Error schema.

Nothing here re-types what the fragment says; every fact is read from the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml

FRAGMENT_NAME = "cancel-task.yaml"
OPERATION_ID = "cancelTask"


def fragment_path() -> Path:
    """Where the fragment lives: inside the wheel, or in the source tree for editable installs."""
    packaged = Path(__file__).parent / "openapi" / FRAGMENT_NAME
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "openapi" / FRAGMENT_NAME


# eq=False: identity hashing, so a loaded fragment can key caches.
@dataclass(frozen=True, eq=False)
class Fragment:
    """The loaded fragment and the facts the checks need from it."""

    path: Path
    raw_bytes: bytes = field(repr=False)
    document: dict[str, Any] = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw_bytes).hexdigest()

    @property
    def version(self) -> str:
        return str(self.document["info"]["version"])

    @property
    def title(self) -> str:
        return str(self.document.get("info", {}).get("title", ""))

    @cached_property
    def operation(self) -> tuple[str, str, dict[str, Any]]:
        """(METHOD, path template, operation object) of the cancel operation."""
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and operation.get("operationId") == OPERATION_ID:
                    return method.upper(), path, operation
        raise LookupError(f"the fragment has no operation {OPERATION_ID!r}")

    @property
    def method(self) -> str:
        return self.operation[0]

    @property
    def path_template(self) -> str:
        return self.operation[1]

    @cached_property
    def documented_statuses(self) -> frozenset[int]:
        return frozenset(int(code) for code in self.operation[2]["responses"])

    def response_description(self, status: int) -> str:
        return str(self.operation[2]["responses"][str(status)].get("description", ""))

    def response_has_body(self, status: int) -> bool:
        """True when the fragment documents a body (content) for this status."""
        return bool(self.operation[2]["responses"][str(status)].get("content"))

    def response_schema_ref(self, status: int) -> str | None:
        content = self.operation[2]["responses"][str(status)].get("content") or {}
        for media in content.values():
            ref = (media.get("schema") or {}).get("$ref")
            if ref:
                return str(ref)
        return None

    @cached_property
    def schemas(self) -> dict[str, Any]:
        return dict(self.document["components"]["schemas"])

    def json_schema(self, ref: str) -> dict[str, Any]:
        """A self-contained JSON Schema for a `#/components/schemas/...` reference.

        The components are carried along so recursive references (Error.nestedErrors) resolve.
        """
        return {"$ref": ref, "components": {"schemas": self.schemas}}

    @cached_property
    def error_validator(self) -> jsonschema.protocols.Validator:
        ref = next(
            (r for s in sorted(self.documented_statuses) if (r := self.response_schema_ref(s))),
            None,
        )
        if ref is None:
            raise LookupError("the fragment documents no error schema")
        schema = self.json_schema(ref)
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema)

    @cached_property
    def _fast_error_validator(self) -> Any:
        """jsonschema_rs (a schemathesis dependency) for the same schema, or None without it.

        Only ever asked yes/no: violation messages and paths always come from `error_validator`,
        so reports read the same whichever validator ran.
        """
        try:
            import jsonschema_rs
        except ImportError:  # pragma: no cover - installed with schemathesis
            return None
        return jsonschema_rs.Draft202012Validator(self.error_validator.schema)

    def error_is_valid(self, instance: Any) -> bool:
        """Whether instance validates against Error; 100x faster than jsonschema on large bodies.

        Safe to hand to the Rust validator only because bodies.decode_json has already refused
        anything nested deeper than MAX_JSON_DEPTH (it crashes the process far deeper than that).
        """
        fast = self._fast_error_validator
        if fast is None:
            return bool(self.error_validator.is_valid(instance))
        return bool(fast.is_valid(instance))

    @cached_property
    def error_fields(self) -> frozenset[str]:
        return frozenset(self.schemas["Error"].get("properties", {}))

    @cached_property
    def cause_fields(self) -> frozenset[str]:
        return frozenset(self.schemas["ErrorCause"].get("properties", {}))


# PyYAML's safe loader in C (libyaml) when the wheel has it: the pure-Python one takes about
# 25 ms for the fragment, on the way to the run's first request.
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_fragment(path: Path | None = None) -> Fragment:
    path = path or fragment_path()
    raw = path.read_bytes()
    return Fragment(path=path, raw_bytes=raw, document=yaml.load(raw, Loader=SAFE_LOADER))
