"""Catalogue of the defects the reference server can be switched into.

Each defect is a named deviation from a faithful SDDC Manager. The suite's own
tests start the reference server with one defect switched on and assert that
the suite reports exactly the requirements listed here, so the catalogue is
also the suite's specification of what each requirement catches.

Unless a description says otherwise, a defect only changes the answers of
``DELETE /v1/tasks/{id}`` (the operation under test); ``GET`` keeps answering
faithfully so that the suite can still observe the true state of a task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

IdKind = Literal["uuid", "integer", "string"]

Category = Literal[
    "status",
    "error-schema",
    "content-type",
    "success-body",
    "behaviour",
    "concurrency",
    "auth",
    "identity",
    "variation",
    "hostile",
]
Expectation = Literal["fail", "warn", "pass"]

CATEGORIES: tuple[Category, ...] = (
    "status",
    "error-schema",
    "content-type",
    "success-body",
    "behaviour",
    "concurrency",
    "auth",
    "identity",
    "variation",
    "hostile",
)


@dataclass(frozen=True)
class Defect:
    """One switchable deviation and the suite verdict it must provoke."""

    name: str
    category: Category
    description: str
    expect: Expectation
    requirements: tuple[str, ...] = ()


_ERROR_BODY = ("SCH-ERROR-BODY",)
# A DELETE that redirects never cancels at the documented URL (the suite follows no redirect), so
# every requirement that needs a cancel to take effect, or an unknown id to answer 404, fails too.
_REDIRECTED = ("SCH-STATUS", "BEH-CANCEL", "BEH-NOT-CANCELLABLE", "BEH-UNKNOWN-404", "BEH-RACE", "BEH-STATEFUL")

# A lookup that resolves a near-miss id answers it as the task (409: the tasks it reaches refuse).
_IDENTITY = ("BEH-UNKNOWN-404",)

_CATALOGUE: tuple[Defect, ...] = (
    # -- status codes --------------------------------------------------------------------------
    Defect("wrong-success-status", "status",
           "A successful cancel answers 204 instead of 200 (the task is still cancelled).",
           "fail", ("SCH-STATUS", "BEH-CANCEL")),
    Defect("odd-id-400", "status",
           "Ids with characters outside [A-Za-z0-9-] answer 400 with an Error body.",
           "fail", ("SCH-STATUS",)),
    Defect("html-500", "status",
           "Unknown ids answer 500 with a text/html error page.",
           # The page is no Error (SCH-ERROR-BODY) and is labelled text/html (the SHOULD of SCH-ERROR-MEDIA).
           "fail", ("SRV-NO-5XX", "SCH-ERROR-BODY", "SCH-ERROR-MEDIA", "BEH-UNKNOWN-404", "BEH-STATEFUL")),
    Defect("unknown-id-500", "status",
           "Unknown ids answer 500 with a valid Error JSON body.",
           "fail", ("SRV-NO-5XX", "BEH-UNKNOWN-404", "BEH-STATEFUL")),
    Defect("accepted-202", "status",
           "A successful cancel answers 202 instead of 200.",
           "fail", ("SCH-STATUS", "BEH-CANCEL")),
    Defect("redirect-cancel", "status",
           "DELETE answers an undocumented 307 to the same URL with a trailing slash, which then works.",
           "fail", _REDIRECTED),
    Defect("reserved-char-500", "status",
           "Ids containing '!' (raw or %21) answer 500 with a valid Error body.",
           "fail", ("SRV-NO-5XX",)),
    Defect("unknown-uuid-400", "status",
           "Unknown UUID-shaped ids answer 400 with a valid Error body.",
           "fail", ("SCH-STATUS", "BEH-UNKNOWN-404", "BEH-STATEFUL")),
    Defect("generated-204", "status",
           "Ids that name no task and are not UUID-shaped answer 204 with no body.",
           "fail", ("SCH-STATUS", "BEH-UNKNOWN-404")),
    # -- error schema (404 and 409 Error bodies of DELETE) -------------------------------------
    Defect("missing-error-body", "error-schema",
           "404 and 409 answers carry an empty body.", "fail", _ERROR_BODY),
    Defect("plain-text-error", "error-schema",
           "404 and 409 bodies are plain text (\"Task not found\") sent as text/plain.",
           "fail", (*_ERROR_BODY, "SCH-ERROR-MEDIA")),
    Defect("error-wrong-type-top", "error-schema",
           "Error bodies carry \"message\": 7.", "fail", _ERROR_BODY),
    Defect("error-wrong-type-nested", "error-schema",
           "Error bodies nest nestedErrors three levels deep and the innermost has \"errorCode\": 123.",
           "fail", _ERROR_BODY),
    Defect("error-bad-cause", "error-schema",
           "Error bodies carry a second cause whose message is a number and whose type is an array.",
           "fail", _ERROR_BODY),
    Defect("error-as-array", "error-schema",
           "Error bodies are a JSON array holding one Error.", "fail", _ERROR_BODY),
    Defect("context-not-object", "error-schema",
           "Error bodies carry \"context\": \"tasks-service\".", "fail", _ERROR_BODY),
    Defect("arguments-not-strings", "error-schema",
           "Error bodies carry \"arguments\": [42].", "fail", _ERROR_BODY),
    Defect("nested-errors-not-array", "error-schema",
           "Error bodies carry \"nestedErrors\" as an object instead of an array.", "fail", _ERROR_BODY),
    Defect("error-null-fields", "error-schema",
           "Error bodies carry \"errorType\": null and \"remediationMessage\": null.", "fail", _ERROR_BODY),
    Defect("invalid-json-error", "error-schema",
           "Error bodies are truncated JSON sent as application/json.", "fail", _ERROR_BODY),
    # -- content type --------------------------------------------------------------------------
    Defect("json-error-as-text-plain", "content-type",
           "Valid Error JSON bodies are sent with Content-Type text/plain.",
           "warn", ("SCH-ERROR-MEDIA",)),
    # -- success body --------------------------------------------------------------------------
    Defect("success-with-body", "success-body",
           "A successful cancel answers 200 with the task JSON as its body.",
           "fail", ("SCH-200-EMPTY",)),
    # -- behaviour -----------------------------------------------------------------------------
    Defect("cancel-finished-task", "behaviour",
           "SUCCESSFUL, FAILED, COMPLETED_WITH_WARNING and SKIPPED tasks can be cancelled.",
           "fail", ("BEH-NOT-CANCELLABLE",)),
    Defect("pending-cancellable", "behaviour",
           "PENDING tasks can be cancelled.", "fail", ("BEH-NOT-CANCELLABLE",)),
    Defect("recancel-200", "behaviour",
           "Cancelling an already CANCELLED task answers 200.",
           "fail", ("BEH-RECANCEL", "BEH-NOT-CANCELLABLE", "BEH-RACE")),
    Defect("cancel-not-applied", "behaviour",
           "Cancelling an IN_PROGRESS task answers 200 but the task stays IN_PROGRESS.",
           "fail", ("BEH-CANCEL", "BEH-RACE", "BEH-STATEFUL")),
    Defect("forget-cancelled", "behaviour",
           "A cancelled task is removed, so GET and DELETE of it then answer 404.",
           "fail", ("BEH-CANCEL", "BEH-RECANCEL", "BEH-RACE", "BEH-STATEFUL")),
    Defect("unknown-id-409", "behaviour",
           # The state machine's unknown-id rule sees the same 409.
           "Unknown ids answer 409 with an Error body.", "fail", ("BEH-UNKNOWN-404", "BEH-STATEFUL")),
    Defect("unknown-id-200", "behaviour",
           "Unknown ids answer 200 with no body.", "fail", ("BEH-UNKNOWN-404", "BEH-STATEFUL")),
    Defect("cancel-wrong-task", "behaviour",
           "Cancelling an IN_PROGRESS task also cancels the next IN_PROGRESS task in creation order.",
           "fail", ("BEH-STATEFUL",)),
    Defect("cancel-never-settles", "behaviour",
           "A cancel of an IN_PROGRESS task answers 200 but the task reads IN_PROGRESS forever "
           "(an asynchronous cancel that never finishes); a repeat cancel answers 200 too.",
           "fail", ("BEH-CANCEL", "BEH-RACE", "BEH-STATEFUL")),
    Defect("changes-after-read", "behaviour",
           "A cancelled task reads CANCELLED, then FAILED once it has been read CANCELLED twice "
           "with GET /v1/tasks/{id} or 1.5 s after the cancel, whichever comes first.",
           "fail", ("BEH-RECANCEL", "BEH-RACE", "BEH-STATEFUL")),
    Defect("partial-match-ids", "behaviour",
           "GET and DELETE resolve an id to a task when it is that task's id with surrounding whitespace "
           "or trailing characters, or a prefix (8+ characters) of exactly one task's id.",
           "fail", ("BEH-UNKNOWN-404",)),
    Defect("refused-cancel-changes-task", "behaviour",
           "A cancel of a non-cancellable task answers a correct 409 but the task becomes CANCELLED anyway.",
           "fail", ("BEH-NOT-CANCELLABLE",)),
    Defect("vanish-after-409", "behaviour",
           "A cancel refused with 409 deletes the task, so GET and DELETE of it then answer 404.",
           "fail", ("BEH-NOT-CANCELLABLE", "BEH-RECANCEL", "BEH-RACE", "BEH-STATEFUL")),
    # -- concurrency ---------------------------------------------------------------------------
    Defect("racing-cancels", "concurrency",
           "The cancellability check and the status change are not atomic, so racing cancels all answer 200.",
           "fail", ("BEH-RACE",)),
    Defect("race-zero-winners", "concurrency",
           "Cancels of one IN_PROGRESS task that overlap in time all answer 409, and the task ends CANCELLED.",
           "fail", ("BEH-RACE",)),
    Defect("race-404-losers", "concurrency",
           "Of cancels of one IN_PROGRESS task that overlap in time, one answers 200 and the losers 404.",
           "fail", ("BEH-RACE",)),
    # -- auth (every route) --------------------------------------------------------------------
    Defect("auth-ignored", "auth",
           "No bearer token is needed on any route.", "fail", ("AUTH-REQUIRED",)),
    Defect("any-bearer-accepted", "auth",
           "Any non-empty bearer token is accepted; a missing one still answers 401.",
           "fail", ("AUTH-REQUIRED",)),
    # -- identity: a lookup that makes another id name a task (GET and DELETE alike) ------------
    # One per near-miss family of conformance.identity; each also names the kind of task id it
    # needs (TASK_ID_KIND), since some equivalences exist only for integers or strings.
    Defect("trim-ids", "identity",
           "GET and DELETE trim whitespace (every character up to U+0020) around an id before the lookup, "
           "as String.trim() does.", "fail", _IDENTITY),
    Defect("pad-space-ids", "identity",
           "Ids are compared ignoring trailing spaces, as a PAD SPACE collation does.", "fail", _IDENTITY),
    Defect("case-insensitive-ids", "identity",
           "Task ids are strings (as string-task-ids) compared case-insensitively, as a _ci collation does.",
           "fail", _IDENTITY),
    Defect("prefix-ids", "identity",
           "An id of 8 or more characters that is a prefix of exactly one task's id names that task.",
           "fail", _IDENTITY),
    Defect("truncated-ids", "identity",
           "Ids are cut to the length of the longest task id (the column's width) before the lookup.",
           "fail", _IDENTITY),
    Defect("like-ids", "identity",
           "An id of a task id's length is matched with SQL LIKE, unescaped (_ and % are wildcards), and "
           "names the task when it matches exactly one.", "fail", _IDENTITY),
    Defect("numeric-ids", "identity",
           "Task ids are integers (as integer-task-ids) and an id is parsed as a number before the lookup "
           "(+1, 01, 1.0, 1e0 and Unicode digits all name task 1).", "fail", _IDENTITY),
    Defect("double-decoded-ids", "identity",
           "The id is percent-decoded a second time before the lookup, as behind a decoding proxy.",
           "fail", _IDENTITY),
    Defect("path-parameter-ids", "identity",
           "A ;parameter after the id is stripped before the lookup, as servlet containers do.",
           "fail", _IDENTITY),
    Defect("plus-space-ids", "identity",
           "Task ids are strings with spaces (as string-task-ids) and a + in an id is read as a space "
           "(form decoding).", "fail", _IDENTITY),
    Defect("accent-insensitive-ids", "identity",
           "Ids are compared ignoring accents, as an accent-insensitive collation does.", "fail", _IDENTITY),
    Defect("invisible-char-ids", "identity",
           "Zero width spaces, joiners, BOMs and soft hyphens are dropped from an id before the lookup.",
           "fail", _IDENTITY),
    Defect("nfkc-ids", "identity",
           "Ids are NFKC-normalised before the lookup (fullwidth digits and letters name ASCII ids).",
           "fail", _IDENTITY),
    Defect("nfc-ids", "identity",
           "Task ids are strings with accents (as string-task-ids) compared after NFC normalisation.",
           "fail", _IDENTITY),
    Defect("nul-truncated-ids", "identity",
           "An id is cut at its first NUL character before the lookup, as a C string is.", "fail", _IDENTITY),
    # -- legitimate variations a conforming suite must accept ----------------------------------
    Defect("integer-task-ids", "variation",
           "Task ids are integers (100000, 100001, ...) instead of UUIDs.", "pass"),
    Defect("string-task-ids", "variation",
           "Task ids are strings with a space, an accent and letters of both cases (\"T\u00e2che 007\").", "pass"),
    Defect("uuid-case-insensitive-ids", "variation",
           "GET and DELETE find a task by its UUID in any hexadecimal case, as RFC 9562 allows.", "pass"),
    Defect("minimal-error", "variation",
           "Error bodies carry only message and errorCode.", "pass"),
    Defect("newer-build-fields", "variation",
           "Error bodies add label, remediationUrl, notifications and a string-valued context.",
           "pass"),
    Defect("charset-content-type", "variation",
           "Error bodies are sent as application/json;charset=UTF-8.", "pass"),
    Defect("deep-valid-nesting", "variation",
           "Error bodies carry a valid chain of nestedErrors 300 levels deep.", "pass"),
    Defect("title-case-status", "variation",
           "GET returns title-case status spellings such as \"In Progress\" and \"Cancelled\".", "pass"),
    Defect("vendor-error-json", "variation",
           "Error bodies are sent as application/vnd.vmware.error+json.", "pass"),
    Defect("async-cancel-repeat-200", "variation",
           "A cancel of an IN_PROGRESS task answers 200 but the task reads IN_PROGRESS for "
           "the settle time (serve --settle-seconds) before it reads CANCELLED; a repeat cancel meanwhile "
           "answers 200.",
           "pass"),
    Defect("async-cancel-repeat-409", "variation",
           "Like async-cancel-repeat-200, but a repeat cancel before the task settles answers 409 with an "
           "Error body.", "pass"),
    Defect("non-cancellable-in-progress", "variation",
           "The first two IN_PROGRESS tasks in listing order carry isCancellable false and refuse a cancel "
           "with 409 and an Error body, their status unchanged.", "pass"),
    Defect("servlet-url-hygiene", "variation",
           "A Tomcat, Spring Security and nginx front answers 400 text/html to task paths with encoded "
           "slashes, backslashes, percents or periods, semicolons, control characters, // or dot segments, "
           "and 414 to paths over 4096 bytes, before the API sees them.",
           "pass"),
    Defect("backpressure-429", "variation",
           "A gateway answers 429 with Retry-After: 1 on every route once a client exceeds "
           "the rate serve --backpressure-rate and --backpressure-burst allow.", "pass"),
    Defect("non-uuid-task-ids", "variation",
           "The server also holds tasks with ids such as 0, a and % (some IN_PROGRESS) that GET /v1/tasks "
           "lists but the task pool handed to clients leaves out.", "pass"),
    Defect("task-finishes-before-use", "variation",
           "The first IN_PROGRESS task of the handed-over pool turns SUCCESSFUL right after its first "
           "GET /v1/tasks/{id}.", "pass"),
    # -- hostile servers (robustness of the suite itself) --------------------------------------
    Defect("slow-responses", "hostile",
           "Every DELETE waits 3 seconds before answering.", "fail"),
    Defect("huge-error-body", "hostile",
           "404 bodies are a 30 MB JSON document streamed to the client.", "fail", _ERROR_BODY),
    Defect("deep-invalid-nesting", "hostile",
           "404 bodies nest nestedErrors 5000 levels deep with a wrongly typed errorCode at the bottom.",
           "fail", _ERROR_BODY),
    Defect("deep-valid-nesting-10k", "hostile",
           "404 bodies nest valid nestedErrors 10000 levels deep, beyond the suite's documented limit.",
           "fail", _ERROR_BODY),
    Defect("invalid-utf8-error", "hostile",
           "404 bodies are application/json holding the bytes FF FE inside a string.",
           "fail", _ERROR_BODY),
    Defect("redirect-other-host", "hostile",
           "DELETE answers 302 to the same path on 127.0.0.2, another host.",
           "fail", _REDIRECTED),
)

DEFECTS: dict[str, Defect] = {defect.name: defect for defect in _CATALOGUE}

# The kind of task id a defect needs; every other catalogue entry keeps UUIDs.
TASK_ID_KIND: dict[str, IdKind] = {
    "integer-task-ids": "integer",
    "numeric-ids": "integer",
    "string-task-ids": "string",
    "case-insensitive-ids": "string",
    "plus-space-ids": "string",
    "nfc-ids": "string",
}


def task_id_kind(names: Iterable[str]) -> IdKind:
    """The kind of task id the reference server gives its tasks under the defects ``names``."""
    kinds = {TASK_ID_KIND[n] for n in names if n in TASK_ID_KIND}
    if len(kinds) > 1:
        raise ValueError(f"defects that need different kinds of task id: {', '.join(sorted(names))}")
    return kinds.pop() if kinds else "uuid"


def validate_defect_names(names: Iterable[str]) -> frozenset[str]:
    """Return ``names`` as a frozenset, or raise ValueError naming any unknown defect."""
    chosen = frozenset(names)
    unknown = sorted(chosen - DEFECTS.keys())
    if unknown:
        raise ValueError(
            f"unknown defect(s): {', '.join(unknown)}; valid defects: {', '.join(sorted(DEFECTS))}"
        )
    return chosen
