"""Response checks: plain functions, each registered once as one requirement.

Every response of the cancel operation that the suite receives goes through every check here.
A check returns None when it does not apply to the exchange, else the list of its violations
(empty when the exchange satisfies it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.model import Exchange, Kind, Profile, Severity, Violation
from conformance.requirements.registry import register
from conformance.spec import Fragment, load_fragment

# jsonschema quotes the offending instance in its message; a hostile body can make that huge.
_MAX_MESSAGE = 240


@dataclass(frozen=True)
class CheckContext:
    fragment: Fragment
    # --strict-urls: a 400/414 for a URL-hostile id fails SCH-STATUS instead of being information.
    strict_urls: bool = False

    @classmethod
    def default(cls, *, strict_urls: bool = False) -> CheckContext:
        return cls(fragment=load_fragment(), strict_urls=strict_urls)


# What an HTTP layer (Tomcat, Spring Security's StrictHttpFirewall, nginx) answers for a path it
# refuses before the API sees it: 400, or 414 for a URI over its length limit.
URL_LAYER_STATUSES = (400, 414)
URL_HOSTILE = "url-hostile"


def refused_by_url_layer(ctx: CheckContext, exchange: Exchange) -> bool:
    """A 400/414 (any body) to a URL-hostile id, outside --strict-urls: not the API's answer."""
    response = exchange.response
    return (
        not ctx.strict_urls
        and response is not None
        and response.status in URL_LAYER_STATUSES
        and exchange.request.id_class == URL_HOSTILE
    )


CheckResult = Sequence[Violation] | None


def json_pointer(parts: Sequence[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _documents_body(ctx: CheckContext, status: int) -> bool:
    return status in ctx.fragment.documented_statuses and ctx.fragment.response_has_body(status)


@register(
    "SRV-ANSWERS",
    severity=Severity.MUST,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="Every cancel request gets a complete HTTP answer in time",
    seed="Cancel a Task by ID, if it exists",
    source="seed; a timeout, reset or non-HTTP answer gives the client no documented outcome",
)
def answers(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    if exchange.error is None:
        return []
    return [Violation(exchange.error)]


@register(
    "SCH-STATUS",
    severity=Severity.MUST,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="The status code is one the fragment documents",
    seed="Responses: 200 Task was cancelled successfully. 404 Task not found. "
    "409 Task can not be cancelled. 500 Unexpected error",
)
def documented_status(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None:
        return None
    documented = ctx.fragment.documented_statuses
    if response.status in documented:
        return []
    if refused_by_url_layer(ctx, exchange):
        # Recorded under SCH-URL-LAYER instead; see docs/DESIGN.md "Well-formed vs URL-hostile ids".
        return None
    listed = ", ".join(str(s) for s in sorted(documented))
    message = f"undocumented status {response.status} {response.reason}".rstrip()
    if 300 <= response.status < 400:
        location = response.headers.get("location") or response.headers.get("Location") or "nowhere"
        message += f" (redirect to {location}, not followed)"
    return [Violation(f"{message}; the fragment documents {listed}")]


@register(
    "SCH-200-EMPTY",
    severity=Severity.MUST,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="A 200 answer carries no body",
    seed="Operation doesn't return any data structure",
)
def success_has_no_body(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None or response.status not in ctx.fragment.documented_statuses:
        return None
    if ctx.fragment.response_has_body(response.status) or not 200 <= response.status < 300:
        return None
    if not response.body:
        return []
    kind = response.content_type or "no Content-Type"
    size = f"{len(response.body)}{'+' if response.truncated else ''}"
    return [
        Violation(
            f"{response.status} carries a {size}-byte body ({kind}); "
            "the fragment documents no body for it"
        )
    ]


@register(
    "SCH-ERROR-BODY",
    severity=Severity.MUST,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="A 404/409/500 body is JSON that validates against Error, nested errors and causes included",
    seed="Returns Error of type(s) */*",
)
def error_body_validates(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None or not _documents_body(ctx, response.status):
        return None
    # Judged whatever the Content-Type says: the seed's */* permits any label, not any body.
    decoded = response.json
    if not decoded.ok:
        return [Violation(f"{response.status} body: {decoded.error}")]
    # jsonschema needs ~1.3 s per MB even for a valid body; the fast yes/no keeps valid bodies
    # cheap, and only an invalid one pays for jsonschema's messages.
    if ctx.fragment.error_is_valid(decoded.value):
        return []
    errors = sorted(
        ctx.fragment.error_validator.iter_errors(decoded.value),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    return [Violation(_shorten(e.message), json_pointer(list(e.absolute_path))) for e in errors]


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


@register(
    "SCH-ERROR-MEDIA",
    severity=Severity.SHOULD,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="An Error body is labelled as JSON (application/json or a +json type)",
    seed="Returns Error of type(s) */*",
    source="seed allows any media type; real builds and VMware's published document use application/json",
)
def error_media_type(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None or not _documents_body(ctx, response.status) or not response.body:
        return None
    if _is_json_media_type(response.content_type):
        return []
    label = response.content_type or "no Content-Type"
    return [Violation(f"{response.status} Error body is labelled {label!r}, not JSON")]


def _error_objects(value: Any) -> Iterator[tuple[list[Any], dict[str, Any], str]]:
    """Yield (path, object, schema name) for the Error and ErrorCause objects in value."""
    stack: list[tuple[list[Any], Any, str]] = [([], value, "Error")]
    while stack:
        path, node, name = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node, name
        if name != "Error":
            continue
        for key, child_name in (("nestedErrors", "Error"), ("causes", "ErrorCause")):
            children = node.get(key)
            if isinstance(children, list):
                stack.extend(([*path, key, i], child, child_name) for i, child in enumerate(children))


@register(
    "SCH-EXTENSIONS",
    severity=Severity.MAY,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="Error fields the seed does not list are allowed and reported as information",
    seed="Returns Error of type(s) */*",
    source="docs/SOURCES.md#newer-build-error-fields: newer builds add label, remediationUrl and notifications "
    "to Error",
)
def error_extensions(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None or not _documents_body(ctx, response.status) or not response.json.ok:
        return None
    known = {"Error": ctx.fragment.error_fields, "ErrorCause": ctx.fragment.cause_fields}
    notes = [
        Violation(f"field not in the seed's {name}", json_pointer([*path, key]))
        for path, node, name in _error_objects(response.json.value)
        for key in sorted(node)
        if key not in known[name]
    ]
    return sorted(notes, key=lambda v: v.path or "")


@register(
    "SCH-URL-LAYER",
    severity=Severity.MAY,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="A URL-hostile id may be refused by the HTTP layer (400/414, any body); reported as information",
    seed="Responses: 200 Task was cancelled successfully. 404 Task not found. "
    "409 Task can not be cancelled. 500 Unexpected error",
    source="Tomcat, Spring Security StrictHttpFirewall and nginx answer 400/414 before the API for encoded "
    "slashes, backslashes, percents, periods, semicolons, control characters, dot segments and long URIs; "
    "--strict-urls fails SCH-STATUS instead",
)
def url_layer_refusal(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None or exchange.request.id_class != URL_HOSTILE or ctx.strict_urls:
        return None
    if not refused_by_url_layer(ctx, exchange):
        return []
    return [Violation(f"URL-hostile id answered {response.status} {response.reason}".rstrip()
                      + " before the API (HTTP layer)")]


@register(
    "SRV-NO-5XX",
    severity=Severity.MUST,
    profile=Profile.SCHEMA,
    kind=Kind.RESPONSE,
    title="The server does not fail (5xx) on a client's cancel request",
    seed="500 Unexpected error",
    source="seed documents 500 as unexpected: a conforming server does not fail on a client's request",
)
def no_server_error(ctx: CheckContext, exchange: Exchange) -> CheckResult:
    response = exchange.response
    if response is None:
        return None
    if response.status < 500:
        return []
    validity = "with a valid Error body" if _valid_error(ctx, exchange) else "without a valid Error body"
    return [Violation(f"{response.status} {response.reason} {validity}".replace("  ", " "))]


def _valid_error(ctx: CheckContext, exchange: Exchange) -> bool:
    response = exchange.response
    if response is None or not response.json.ok:
        return False
    return ctx.fragment.error_is_valid(response.json.value)
