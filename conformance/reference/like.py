"""`serve --like PROFILE`: the reference server takes on a recorded build's observable behaviour.

`like(profile)` reads a profile.json (what a target did, by id class) and returns the
`ReferenceConfig` settings that make the reference server answer the same way where it can:
cancel mode and settle time (the async-cancel-* variations), URL-layer 400/414 pages
(servlet-url-hygiene), IN_PROGRESS tasks listed isCancellable false (non-cancellable-in-progress),
the Error media type (charset-content-type, vendor-error-json), the errorCode spellings, which
optional Error fields are filled (minimal-error) and the token lifetime. What it cannot take on
is said in `notes`, one line each, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Error media types the reference server can send, by the variation that sends them.
_MEDIA_VARIATIONS = {
    "application/json;charset=utf-8": "charset-content-type",
    "application/vnd.vmware.error+json": "vendor-error-json",
}
# Codes are identifiers: anything else in a profile (it is an untrusted file) is not taken on.
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_REFUSING_STATUSES = ("PENDING", "SUCCESSFUL", "FAILED", "CANCELLED", "COMPLETED_WITH_WARNING", "SKIPPED")


@dataclass(frozen=True)
class Likeness:
    """ReferenceConfig keyword arguments, and what of the profile they could not reproduce."""

    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _classes(profile: Mapping[str, Any]) -> Mapping[str, Any]:
    classes = profile.get("classes")
    return classes if isinstance(classes, Mapping) else {}


def _keys(entry: Any, key: str) -> set[str]:
    value = entry.get(key) if isinstance(entry, Mapping) else None
    return {str(k) for k in value} if isinstance(value, Mapping) else set()


def _code(entry: Any) -> str | None:
    """The one errorCode a class was answered with, if it is one plain identifier."""
    codes = _keys(entry, "error_codes")
    if len(codes) == 1:
        code = codes.pop()
        if 0 < len(code) <= 100 and set(code) <= _CODE_CHARS:
            return code
    return None


def like(profile: Mapping[str, Any]) -> Likeness:
    classes = _classes(profile)
    defects: set[str] = set()
    settings: dict[str, Any] = {}
    notes: list[str] = []
    cancel: Mapping[str, Any] = profile["cancel"] if isinstance(profile.get("cancel"), Mapping) else {}
    if cancel.get("mode") == "asynchronous":
        # What a repeat cancel before settling answers: seen directly, else in the race (cancels of
        # one task at once, all before it settles: a 409 among them is a refused repeat).
        pending = set(cancel.get("repeat_while_pending") or []) or {
            int(s) for s in _keys(classes.get("racing cancels"), "statuses") if s.isdigit() and s != "200"}
        defects.add("async-cancel-repeat-409" if 409 in pending else "async-cancel-repeat-200")
        # The longest a cancelled task still read IN_PROGRESS is the closer estimate: the first
        # CANCELLED read (settle_seconds) comes up to a polling interval late.
        settle = cancel.get("pending_seconds") or cancel.get("settle_seconds")
        if isinstance(settle, int | float) and not isinstance(settle, bool) and 0 <= settle <= 3600:
            settings["settle_seconds"] = float(settle)
    hostile = [entry for name, entry in classes.items() if str(name).startswith("url-hostile")]
    if any(_keys(entry, "statuses") & {"400", "414"} and any(
            m.startswith("text/html") for m in _keys(entry, "media_types")) for entry in hostile):
        defects.add("servlet-url-hygiene")
    not_cancellable = profile.get("not_cancellable")
    if isinstance(not_cancellable, Mapping) and (not_cancellable.get("listed") or 0) > 0:
        defects.add("non-cancellable-in-progress")
    unknown = classes.get("unknown uuid") or classes.get("unknown id")
    media = _keys(unknown, "media_types")
    if len(media) == 1 and media <= _MEDIA_VARIATIONS.keys():
        defects.add(_MEDIA_VARIATIONS[media.pop()])
    code = _code(unknown)
    if code is not None:
        settings["not_found_code"] = code
    refused = next((classes[f"task {s}"] for s in _REFUSING_STATUSES if f"task {s}" in classes), None)
    code = _code(refused)
    if code is not None:
        settings["not_cancellable_code"] = code
    error = profile.get("error")
    fields = set(error.get("fields") or []) if isinstance(error, Mapping) else set()
    if fields and fields <= {"errorCode", "message"}:
        defects.add("minimal-error")
    token = profile.get("token")
    # A token's life in requests is what a client meets however fast it goes; the seconds are the
    # fallback for a profile that has no count (an appliance may expire tokens by either).
    uses = token.get("lifetime_requests") if isinstance(token, Mapping) else None
    lifetime = token.get("lifetime_seconds") if isinstance(token, Mapping) else None
    if isinstance(uses, int) and not isinstance(uses, bool) and uses > 0:
        settings["token_lifetime_requests"] = uses
    elif isinstance(lifetime, int | float) and not isinstance(lifetime, bool) and lifetime > 0:
        settings["token_ttl"] = float(lifetime)
    # Said, not dropped: answers the reference server gives otherwise whatever it is told.
    if unknown is not None and _keys(unknown, "statuses") - {"404"}:
        notes.append(f"unknown ids answered {', '.join(sorted(_keys(unknown, 'statuses')))}; "
                     "the reference server answers 404")
    if refused is not None and _keys(refused, "statuses") - {"409"}:
        notes.append(f"finished tasks' cancels answered {', '.join(sorted(_keys(refused, 'statuses')))}; "
                     "the reference server answers 409")
    settings["defects"] = frozenset(defects)
    return Likeness(settings, tuple(notes))
