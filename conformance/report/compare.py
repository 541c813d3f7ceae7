"""`compare`: every behaviour two profiles (profile.json) differ in, each classed for a client.

A difference **would break a client** when code written against the baseline would take another
branch against the candidate: a status code, a media type, whether an Error body comes at all, the
errorCode a client switches on, the cancel mode, what a repeat cancel while pending answers (state
transitions), how an IN_PROGRESS task with isCancellable false is answered. It is **tolerated**
when only a person reading would notice: message wording, errorType, which optional Error fields
are filled, nesting depth, settle time, latency, token lifetime, backpressure, media type
parameters (``;charset=UTF-8``). A behaviour seen on one side only (a class of ids the other run
did not send, a task status its pool lacked) is **not compared**: absence of evidence is not a
difference.

Profiles are untrusted files: every string shown is cleaned, every shape checked.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conformance.text import clean_line

BREAKS = "would break a client"
TOLERATED = "tolerated"
NOT_COMPARED = "not compared"
KINDS = (BREAKS, TOLERATED, NOT_COMPARED)
# Latency differs on every run; a percentile is a difference once one side is this much slower.
LATENCY_RATIO = 2.0
# Settle times within this many seconds, or this ratio, are the same mode's noise: the suite
# polls with a doubling delay, so the first CANCELLED read comes up to one interval late.
SETTLE_TOLERANCE = 0.5
SETTLE_RATIO = 2.0


class ProfileError(ValueError):
    """A file that is not a profile the suite can compare (usage error, exit 2)."""


@dataclass(frozen=True)
class Difference:
    behaviour: str
    baseline: str
    candidate: str
    kind: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"behaviour": self.behaviour, "baseline": self.baseline, "candidate": self.candidate,
                "kind": self.kind, "why": self.why}


def check_profile(document: Any, where: str) -> dict[str, Any]:
    """The document if it is a version-1 profile, else ProfileError naming what is wrong."""
    if not isinstance(document, dict):
        raise ProfileError(f"{where} is not a profile.json (not a JSON object)")
    if document.get("profile_version") != 1:
        raise ProfileError(f"{where} is not a version 1 profile.json (profile_version "
                           f"{clean_line(str(document.get('profile_version')))[:20]})")
    for key in ("classes", "cancel", "error", "not_cancellable", "latency_ms"):
        if not isinstance(document.get(key), dict):
            raise ProfileError(f"{where}: {key} is missing or not an object")
    for name, entry in document["classes"].items():
        if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), dict) for k in ("statuses", "media_types", "bodies", "error_codes")):
            raise ProfileError(f"{where}: class {clean_line(str(name))[:80]!r} is malformed")
    return document


def _show(values: Iterable[Any]) -> str:
    shown = sorted({clean_line(str(v))[:120] for v in values})
    return ", ".join(shown) if shown else "none"


def _essence(media_type: str) -> str:
    return media_type.split(";", 1)[0]


# Body kinds (profile.json) as a reader says them.
_BODY_WORDS = {"json-object": "Error JSON", "json": "other JSON", "other": "not JSON", "none": "none"}


def _bodies(kinds: Iterable[str]) -> set[str]:
    return {_BODY_WORDS.get(kind, kind) for kind in kinds}


def _error_bodies(entry: Mapping[str, Any]) -> set[str]:
    """Whether the answers that are errors (4xx/5xx) carried an Error body: the body kinds seen."""
    statuses = {int(s) for s in entry.get("statuses", {}) if str(s).isdigit()}
    if not any(s >= 400 for s in statuses):
        return set()
    return set(entry.get("bodies", {}))


def _class_differences(name: str, base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[Difference]:
    """At most two rows for one class: what would break a client in it, and what is tolerated."""
    label = clean_line(name)[:120]
    found: dict[str, list[tuple[str, str, str, str]]] = {BREAKS: [], TOLERATED: []}

    def add(kind: str, aspect: str, b: Iterable[Any], c: Iterable[Any], why: str) -> None:
        found[kind].append((aspect, _show(b), _show(c), why))

    if set(base["statuses"]) != set(cand["statuses"]):
        add(BREAKS, "status", base["statuses"], cand["statuses"], "a client branches on the status code")
    b_media, c_media = set(base["media_types"]), set(cand["media_types"])
    if {_essence(m) for m in b_media} != {_essence(m) for m in c_media}:
        add(BREAKS, "media type", b_media, c_media, "a client parses the body by its media type")
    elif b_media != c_media:
        add(TOLERATED, "media type parameters", b_media, c_media, "the same media type, other parameters")
    b_bodies, c_bodies = _error_bodies(base), _error_bodies(cand)
    if b_bodies and c_bodies and b_bodies != c_bodies:
        add(BREAKS, "Error body", _bodies(b_bodies), _bodies(c_bodies),
            "a client reads errorCode and message from the Error body")
    elif set(base["bodies"]) != set(cand["bodies"]) and not (b_bodies and c_bodies):
        add(BREAKS, "body", _bodies(base["bodies"]), _bodies(cand["bodies"]), "a client reads (or expects no) body")
    # Codes and wordings only where both sides answered with Error bodies: otherwise the body
    # difference above says it all.
    both_errors = "json-object" in b_bodies and "json-object" in c_bodies
    if both_errors and set(base["error_codes"]) != set(cand["error_codes"]):
        add(BREAKS, "errorCode", base["error_codes"], cand["error_codes"], "a client switches on errorCode")
    if both_errors and set(base.get("error_types", {})) != set(cand.get("error_types", {})):
        add(TOLERATED, "errorType", base.get("error_types", {}), cand.get("error_types", {}),
            "errorType describes, clients key on errorCode")
    if both_errors and set(base.get("messages", [])) != set(cand.get("messages", [])):
        add(TOLERATED, "message wording", base.get("messages", []), cand.get("messages", []),
            "messages are for people")
    out = []
    for kind, aspects in found.items():
        if aspects:
            out.append(Difference(
                f"{label}: {', '.join(a for a, _, _, _ in aspects)}",
                " · ".join(f"{a} {b}" for a, b, _, _ in aspects),
                " · ".join(f"{a} {c}" for a, _, c, _ in aspects),
                kind, "; ".join(w for _, _, _, w in aspects)))
    return out


def _value(x: Any) -> str:
    return "not observed" if x is None or x == [] else clean_line(str(x))[:120]


def diff_profiles(base: Mapping[str, Any], cand: Mapping[str, Any]) -> list[Difference]:
    """Every behaviour that differs, would-break-a-client first."""
    out: list[Difference] = []
    b_classes, c_classes = base["classes"], cand["classes"]
    for name in sorted(b_classes.keys() | c_classes.keys()):
        if name in b_classes and name in c_classes:
            out += _class_differences(name, b_classes[name], c_classes[name])
        else:
            side = "baseline" if name in b_classes else "candidate"
            out.append(Difference(clean_line(name)[:120], "seen" if side == "baseline" else "not sent",
                                  "seen" if side == "candidate" else "not sent", NOT_COMPARED,
                                  f"only the {side} run sent such requests"))
    b_cancel, c_cancel = base["cancel"], cand["cancel"]
    b_mode, c_mode = b_cancel.get("mode"), c_cancel.get("mode")
    if b_mode != c_mode:
        if b_mode and c_mode:
            out.append(Difference("cancel mode", _value(b_mode), _value(c_mode), BREAKS,
                                  "a client that reads the task right after a 200 sees another status"))
        else:
            out.append(Difference("cancel mode", _value(b_mode), _value(c_mode), NOT_COMPARED,
                                  "one run cancelled no task"))
    elif b_mode == "asynchronous":
        b_settle, c_settle = b_cancel.get("settle_seconds"), c_cancel.get("settle_seconds")
        if isinstance(b_settle, int | float) and isinstance(c_settle, int | float) and \
                abs(b_settle - c_settle) > SETTLE_TOLERANCE and \
                max(b_settle, c_settle) > SETTLE_RATIO * min(b_settle, c_settle):
            out.append(Difference("settle time (s)", _value(b_settle), _value(c_settle), TOLERATED,
                                  "a client that waits for CANCELLED waits longer or shorter"))
    b_pending, c_pending = b_cancel.get("repeat_while_pending") or [], c_cancel.get("repeat_while_pending") or []
    if b_pending and c_pending and set(b_pending) != set(c_pending):
        out.append(Difference("repeat cancel while pending", _show(b_pending), _show(c_pending), BREAKS,
                              "a client retrying a cancel gets another answer (state transitions)"))
    b_listed = int(base["not_cancellable"].get("listed") or 0)
    c_listed = int(cand["not_cancellable"].get("listed") or 0)
    if bool(b_listed) != bool(c_listed):
        out.append(Difference("IN_PROGRESS tasks listed isCancellable false", str(b_listed), str(c_listed),
                              TOLERATED, "depends on the tasks each side holds; how they are answered is "
                              "compared under 'task IN_PROGRESS, isCancellable false'"))
    b_fields, c_fields = set(base["error"].get("fields", [])), set(cand["error"].get("fields", []))
    if b_fields != c_fields:
        out.append(Difference("optional Error fields filled", _show(b_fields), _show(c_fields), TOLERATED,
                              "every Error field is optional"))
    b_depth, c_depth = base["error"].get("max_nesting_depth"), cand["error"].get("max_nesting_depth")
    if b_depth != c_depth:
        out.append(Difference("Error nesting depth", _value(b_depth), _value(c_depth), TOLERATED,
                              "nestedErrors is optional"))
    for section, key, label in (("token", "lifetime_seconds", "token lifetime (s)"),
                                ("backpressure", "retries", "backpressure retries")):
        b_v, c_v = (base.get(section) or {}).get(key), (cand.get(section) or {}).get(key)
        if b_v != c_v and (b_v or c_v):
            out.append(Difference(label, _value(b_v), _value(c_v), TOLERATED, "a client re-logs in or waits"))
    for pct in ("p50", "p99"):
        b_v, c_v = base["latency_ms"].get(pct), cand["latency_ms"].get(pct)
        if isinstance(b_v, int | float) and isinstance(c_v, int | float) and \
                max(b_v, c_v) > LATENCY_RATIO * max(min(b_v, c_v), 1.0):
            out.append(Difference(f"latency {pct} (ms)", _value(b_v), _value(c_v), TOLERATED,
                                  "slower or faster, the same answers"))
    order = {kind: i for i, kind in enumerate(KINDS)}
    return sorted(out, key=lambda d: order[d.kind])


def breaks(differences: Iterable[Difference]) -> list[Difference]:
    return [d for d in differences if d.kind == BREAKS]


def headline(differences: list[Difference]) -> str:
    broken = len(breaks(differences))
    tolerated = sum(1 for d in differences if d.kind == TOLERATED)
    if broken:
        return (f"DIFFERENT: {broken} difference{'s' if broken != 1 else ''} would break a client "
                f"({tolerated} tolerated)")
    return f"COMPATIBLE: nothing would break a client ({tolerated} tolerated)"


# -- output ------------------------------------------------------------------------------------------
def as_console(differences: list[Difference], baseline: str, candidate: str) -> str:
    """One block per difference (a terminal is too narrow for five columns of this)."""
    marks = {BREAKS: "BREAKS", TOLERATED: "ok", NOT_COMPARED: "-"}
    lines = [f"baseline:  {clean_line(baseline)}", f"candidate: {clean_line(candidate)}", ""]
    for d in differences:
        lines += [f"{marks[d.kind]:7} {d.behaviour}", f"        baseline:  {d.baseline[:300]}",
                  f"        candidate: {d.candidate[:300]}"]
    return "\n".join([*lines, "", headline(differences)])


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("`", "\\`")


def as_markdown(differences: list[Difference], baseline: str, candidate: str) -> str:
    lines = [f"## {headline(differences)}", "", f"Baseline: `{_md(clean_line(baseline))}`  ",
             f"Candidate: `{_md(clean_line(candidate))}`", "",
             "| class | behaviour | baseline | candidate | why |", "|---|---|---|---|---|"]
    lines += [f"| {d.kind} | {_md(d.behaviour)} | {_md(d.baseline)} | {_md(d.candidate)} | {_md(d.why)} |"
              for d in differences]
    return "\n".join(lines) + "\n"


def as_html(differences: list[Difference], baseline: str, candidate: str) -> str:
    e = html.escape
    rows = "\n".join(
        f'<tr class="{e(d.kind.split()[0])}"><td>{e(d.kind)}</td><td>{e(d.behaviour)}</td>'
        f"<td>{e(d.baseline)}</td><td>{e(d.candidate)}</td><td>{e(d.why)}</td></tr>"
        for d in differences)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sddc-conformance compare</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
        "table{border-collapse:collapse}tr.would td:first-child{color:#b00;font-weight:bold}</style></head>"
        f"<body><h1>{e(headline(differences))}</h1><p>Baseline: <code>{e(clean_line(baseline))}</code><br>"
        f"Candidate: <code>{e(clean_line(candidate))}</code></p><table><tr><th>class</th><th>behaviour</th>"
        f"<th>baseline</th><th>candidate</th><th>why</th></tr>\n{rows}\n</table></body></html>\n"
    )


def as_json(differences: list[Difference], baseline: str, candidate: str) -> str:
    document = {"baseline": clean_line(baseline), "candidate": clean_line(candidate),
                "headline": headline(differences), "breaks_a_client": bool(breaks(differences)),
                "differences": [d.to_json() for d in differences]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"console": as_console, "markdown": as_markdown, "html": as_html, "json": as_json}
