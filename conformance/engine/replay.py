"""`sddc-conformance replay`: re-send the failing requests of a report and re-judge the answers.

findings.json is input from whoever handed the report over: every recorded request is checked
before anything is sent. A recorded URL must lie under the recorded target (same scheme, host,
port and path prefix); the request sent is rebuilt from URL components on top of the base URL
the user named, never by joining recorded text onto it, so a tampered URL ("@host:port/...",
":port/...", ".evil.example/...") cannot steer a request, or the credentials, anywhere else.

Scenario findings (BEH-*, AUTH-*) depend on a sequence of requests and the target's state: they
are re-checked by running the scenario itself against the new target with a fresh session. A
scenario that needs a task nobody handed over is reported as not replayable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qsl, urlsplit

from conformance.bodies import decode_json
from conformance.engine.recorder import Recorder
from conformance.engine.target import Target, TargetConfig
from conformance.errors import AuthenticationFailed, ReportError, TargetUnreachable
from conformance.model import Exchange, Outcome
from conformance.text import clean_line, public_url

SCENARIO_PREFIXES = ("BEH-", "AUTH-")
# The methods the catalogue ever sends to a task; anything else in a report was put there by hand.
REPLAYABLE_METHODS = frozenset({"DELETE", "GET"})
# findings.json is written by the suite (a few MiB at most); the cap keeps a hostile file cheap.
MAX_REPORT_BYTES = 64 * 1024 * 1024
# Whitespace, controls (C0, DEL, C1) and the characters that change where a URL points.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f@\\]")


ReplayError = ReportError


class UnsafeRecording(ReportError):
    """A recorded request that does not lie under the recorded target: replay sends nothing."""


class ReplayUnreachable(TargetUnreachable):
    """The target did not answer a replayed request."""


class ReplayUnauthorized(AuthenticationFailed):
    """The target refused replay's credentials: judging the answer would call every failure fixed."""


class Verdict(StrEnum):
    STILL_FAILS = "still fails"
    FIXED = "fixed"
    NOT_REPLAYABLE = "not replayable"
    NO_REQUEST = "not replayable (no request recorded)"


@dataclass(frozen=True)
class RecordedFinding:
    requirement: str
    summary: str
    method: str
    url: str | None
    authenticated: bool
    status: int | None


@dataclass(frozen=True)
class ReplayResult:
    finding: RecordedFinding
    verdict: Verdict
    detail: str = ""
    # The request as sent to the NEW target (never the recorded URL, which may be dead or hostile).
    sent: str = ""

    @property
    def rechecked(self) -> bool:
        return self.verdict in (Verdict.STILL_FAILS, Verdict.FIXED)

    def line(self) -> str:
        where = f" {self.sent}" if self.sent else ""
        detail = f" -- {self.detail}" if self.detail else ""
        return clean_line(f"{self.verdict}: {self.finding.requirement}{where}{detail}")


def load_report(path: Path) -> dict[str, Any]:
    """findings.json from a report directory (or the file itself), depth-bounded."""
    file = path / "findings.json" if path.is_dir() else path
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise ReplayError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise ReplayError(f"{file} is larger than {MAX_REPORT_BYTES} bytes: not a findings.json report")
    decoded = decode_json(raw)
    if not decoded.ok:
        raise ReplayError(f"{file} is not usable JSON: {decoded.error}")
    document = decoded.value
    if not isinstance(document, dict) or not isinstance(document.get("requirements"), list):
        raise ReplayError(f"{file} is not a findings.json report")
    return document


def failing_findings(document: dict[str, Any]) -> Iterator[RecordedFinding]:
    for requirement in document["requirements"]:
        if not isinstance(requirement, dict):
            continue
        for finding in requirement.get("findings") or ():
            if not isinstance(finding, dict) or finding.get("level") != "fail":
                continue
            exchange = _mapping(finding.get("exchange"))
            request = _mapping(exchange.get("request"))
            response = _mapping(exchange.get("response"))
            headers = _mapping(request.get("headers"))
            yield RecordedFinding(
                requirement=str(finding.get("requirement") or requirement.get("id")),
                summary=str(finding.get("summary") or ""),
                method=str(request.get("method") or ""),
                url=request.get("url") if isinstance(request.get("url"), str) else None,
                authenticated=any(str(k).lower() == "authorization" for k in headers),
                status=response.get("status") if isinstance(response.get("status"), int) else None,
            )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _origin(parts: SplitResult, what: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL; UnsafeRecording for userinfo, a bad port or host:port:port."""
    if parts.scheme not in ("http", "https"):
        raise UnsafeRecording(f"{what}: scheme must be http or https")
    if "@" in parts.netloc or _UNSAFE.search(parts.netloc):
        raise UnsafeRecording(f"{what}: the host part carries user info or unsafe characters")
    try:
        port = parts.port
    except ValueError:
        # urllib says "Port could not be cast to integer value as '1:2'" for host:port:port.
        raise UnsafeRecording(f"{what}: the port is not a number (host:port:port?)") from None
    host = parts.hostname or ""
    if not host:
        raise UnsafeRecording(f"{what}: no host")
    return parts.scheme, host, port if port is not None else (443 if parts.scheme == "https" else 80)


def rebuild_request(method: str, url: str, recorded_base: str | None) -> tuple[str, str]:
    """(method, path?query relative to the base URL) of a recorded request, or UnsafeRecording.

    The recorded URL must have the recorded target's scheme, host and port and start with its
    path prefix; what remains after the prefix is sent under the new base URL's prefix.
    """
    if method not in REPLAYABLE_METHODS:
        raise UnsafeRecording(
            f"recorded method {clean_line(repr(method))} is not one the suite sends "
            f"({', '.join(sorted(REPLAYABLE_METHODS))})"
        )
    if not recorded_base:
        raise UnsafeRecording("the report records no target URL to check the recorded requests against")
    if _UNSAFE.search(url) or "#" in url:
        raise UnsafeRecording(f"recorded URL {clean_line(repr(url))} contains whitespace, controls, '@' or '#'")
    parts, base = urlsplit(url), urlsplit(recorded_base)
    shown = clean_line(public_url(url))
    if _origin(parts, f"recorded URL {shown}") != _origin(base, "recorded target URL"):
        recorded = clean_line(public_url(recorded_base))
        raise UnsafeRecording(f"recorded URL {shown} is not on the recorded target {recorded}")
    prefix = base.path.rstrip("/")
    path = parts.path
    if not path.startswith(prefix + "/"):
        raise UnsafeRecording(f"recorded URL {shown} is not under the recorded target's path {prefix or '/'}")
    relative = path[len(prefix):]
    # "//host/..." would read as a network path to anyone who re-parses the joined URL.
    if relative.startswith("//"):
        raise UnsafeRecording(f"recorded URL {shown} has an empty path segment after the prefix")
    return method, relative + (f"?{parts.query}" if parts.query else "")


def rebased_path(url: str, recorded_base: str | None = None) -> str:
    """The path and query of a recorded URL relative to the recorded base URL (see rebuild_request)."""
    return rebuild_request("GET", url, recorded_base or _origin_only(url))[1]


def _origin_only(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def recorded_target(document: dict[str, Any]) -> str | None:
    target = document.get("target")
    url = target.get("url") if isinstance(target, dict) else None
    return url if isinstance(url, str) else None


def check_recorded_requests(document: dict[str, Any]) -> None:
    """Refuse the whole report before anything is sent if one recorded request is unsafe."""
    base = recorded_target(document)
    for finding in failing_findings(document):
        if finding.requirement.startswith(SCENARIO_PREFIXES) or not finding.url:
            continue
        try:
            rebuild_request(finding.method, finding.url, base)
        except UnsafeRecording as exc:
            raise UnsafeRecording(f"{clean_line(finding.requirement)}: {exc}") from None


def _judge(finding: RecordedFinding, exchange: Exchange, recorder: Recorder, sent: str) -> ReplayResult:
    if exchange.response is None:
        raise ReplayUnreachable(clean_line(f"{sent}: {exchange.error}"))
    if exchange.response.status in (401, 403) and finding.status not in (401, 403):
        raise ReplayUnauthorized(
            clean_line(f"{sent} answered {exchange.response.status}: ")
            + "the target refuses replay's credentials; pass --token or --username"
        )
    failed = [f for f in recorder.check(exchange) if f.requirement_id == finding.requirement]
    status = f"answered {exchange.response.status}"
    if finding.status is not None and finding.status != exchange.response.status:
        status += f" (recorded {finding.status})"
    if failed:
        return ReplayResult(finding, Verdict.STILL_FAILS, f"{status}: {failed[0].summary}", sent)
    return ReplayResult(finding, Verdict.FIXED, status, sent)


class ScenarioRunner(Protocol):
    """Re-checks scenario findings; `missing` says, without sending anything, what one lacks."""

    def missing(self, finding: RecordedFinding) -> str | None: ...

    def __call__(self, finding: RecordedFinding) -> ReplayResult: ...


def replay(
    document: dict[str, Any],
    config: TargetConfig,
    on_outcome: Callable[[ReplayResult], None] | None = None,
    scenario_runner: ScenarioRunner | None = None,
) -> list[ReplayResult]:
    """Re-send every replayable failing request once; raises TargetError when the target is gone.

    What cannot be re-checked with the input given is decided first and said once per
    requirement, and nothing is sent for it.
    """
    check_recorded_requests(document)
    recorded_base = recorded_target(document)
    findings = list(failing_findings(document))
    outcomes: list[ReplayResult] = []
    seen: set[tuple[str, str, str]] = set()

    def emit(outcome: ReplayResult) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    # One scenario run re-checks every finding of its requirement: the first finding stands for it.
    scenarios: dict[str, RecordedFinding] = {}
    for finding in findings:
        if finding.requirement.startswith(SCENARIO_PREFIXES):
            scenarios.setdefault(finding.requirement, finding)
    runnable: list[RecordedFinding] = []
    for finding in scenarios.values():
        lacking = "a scenario; re-run the suite" if scenario_runner is None else scenario_runner.missing(finding)
        if lacking is None:
            runnable.append(finding)
        else:
            emit(ReplayResult(finding, Verdict.NOT_REPLAYABLE, lacking))
    for finding in findings:
        if not finding.requirement.startswith(SCENARIO_PREFIXES) and (not finding.url or not finding.method):
            emit(ReplayResult(finding, Verdict.NO_REQUEST))

    if any(not f.requirement.startswith(SCENARIO_PREFIXES) and f.url and f.method for f in findings):
        target = Target(config)
        try:
            target.login()
            recorder = Recorder()
            for finding in findings:
                if finding.requirement.startswith(SCENARIO_PREFIXES):
                    continue
                outcome = _replay_one(finding, target, recorder, seen, recorded_base)
                if outcome is not None:
                    emit(outcome)
        finally:
            target.close()
    for finding in runnable:
        assert scenario_runner is not None
        emit(scenario_runner(finding))
    return outcomes


def _replay_one(
    finding: RecordedFinding,
    target: Target,
    recorder: Recorder,
    seen: set[tuple[str, str, str]],
    recorded_base: str | None,
) -> ReplayResult | None:
    if not finding.url or not finding.method:
        return None
    key = (finding.requirement, finding.method, finding.url)
    # The report keeps a few examples per requirement; the same request twice proves nothing new.
    if key in seen:
        return None
    seen.add(key)
    method, relative = rebuild_request(finding.method, finding.url, recorded_base)
    sent = clean_line(f"{method} {public_url(target.base_url)}{relative}")
    path, _, query = relative.partition("?")
    # Target.send takes the query as params (a query left in the path would be sent twice).
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else None
    exchange = target.send(
        method,
        path,
        purpose=f"replay of {finding.requirement}",
        auth=finding.authenticated,
        params=params,
    )
    return _judge(finding, exchange, recorder, sent)


class _Scenarios:
    """Re-runs scenario requirements against the new target, each in a fresh session."""

    def __init__(self, options: Any) -> None:
        self.options = options

    def missing(self, finding: RecordedFinding) -> str | None:
        """What the scenario lacks among the input given (a task, credentials), or None.

        Read from the requirement's own --dry-run plan, in a session that sends nothing: a
        scenario that cannot run costs the target no login, listing or read.
        """
        from conformance.engine.session import open_session
        from conformance.requirements import REGISTRY

        requirement = REGISTRY.get(finding.requirement)
        if requirement is None:
            return "not a requirement of this suite version"
        if requirement.plan is None:
            return None
        with open_session(replace(self.options, profile=requirement.profile, dry_run=True)) as session:
            plan = requirement.plan(session)
        lacking = "; ".join(line.removeprefix("NOT RUN:").strip() for line in plan if line.startswith("NOT RUN:"))
        if not lacking:
            return None
        if "--task" in lacking or "task" not in lacking:
            return lacking
        if requirement.takes_in_progress:
            return f"{lacking}: pass --task IN_PROGRESS=<id> (it will be cancelled) or --tasks-file"
        return f"{lacking}: pass --task STATUS=<id> of such a task (e.g. SUCCESSFUL=<id>) or --tasks-file"

    def __call__(self, finding: RecordedFinding) -> ReplayResult:
        from conformance.engine.session import open_session
        from conformance.requirements import REGISTRY

        requirement = REGISTRY.get(finding.requirement)
        if requirement is None:
            return ReplayResult(finding, Verdict.NOT_REPLAYABLE, "not a requirement of this suite version")
        with open_session(replace(self.options, profile=requirement.profile)) as session:
            requirement.func(session)
            results = [r for r in session.recorder.results() if r.requirement.id == requirement.id]
        where = f"scenario against {public_url(self.options.base_url)}"
        if not results or results[0].outcome in (Outcome.NOT_RUN, Outcome.SKIPPED):
            # Something only the target could tell (every IN_PROGRESS task given refuses a cancel).
            reason = results[0].reason if results else "the scenario did not run"
            return ReplayResult(finding, Verdict.NOT_REPLAYABLE, reason, where)
        if results[0].outcome is Outcome.FAIL:
            summary = results[0].findings[0].summary if results[0].findings else results[0].reason
            return ReplayResult(finding, Verdict.STILL_FAILS, summary, where)
        return ReplayResult(finding, Verdict.FIXED, results[0].reason, where)


def scenario_runner(options: Any) -> ScenarioRunner:
    """Re-run scenario requirements against the new target (`options`: RunOptions)."""
    return _Scenarios(options)


def replay_target_url(document: dict[str, Any], base_url: str | None) -> str:
    url = base_url or recorded_target(document)
    if not url:
        raise ReplayError("the report records no target URL; pass --base-url")
    return public_url(url) if base_url is None else url
