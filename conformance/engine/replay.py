"""`sddc-conformance replay`: re-send the failing requests of a report and re-judge the answers.

Only findings of response checks carry a single request that shows the failure; scenario findings
(BEH-*, AUTH-*) depend on a sequence of requests and the target's state, so they are listed as not
replayable. The stored requests never hold a token: replay authenticates with its own credentials.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conformance.engine.recorder import Recorder
from conformance.engine.target import Target, TargetConfig
from conformance.errors import AuthenticationFailed, ReportError, TargetUnreachable
from conformance.model import Exchange
from conformance.text import public_url

SCENARIO_PREFIXES = ("BEH-", "AUTH-")


ReplayError = ReportError


class ReplayUnreachable(TargetUnreachable):
    """The target did not answer a replayed request."""


class ReplayUnauthorized(AuthenticationFailed):
    """The target refused replay's credentials: judging the answer would call every failure fixed."""


class Verdict(StrEnum):
    STILL_FAILS = "still fails"
    FIXED = "fixed"
    NOT_REPLAYABLE = "not replayable (scenario)"
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

    def line(self) -> str:
        where = f" {self.finding.method} {self.finding.url}" if self.finding.url else ""
        detail = f" -- {self.detail}" if self.detail else ""
        return f"{self.verdict}: {self.finding.requirement}{where}{detail}"


def load_report(path: Path) -> dict[str, Any]:
    """findings.json from a report directory (or the file itself)."""
    file = path / "findings.json" if path.is_dir() else path
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReplayError(f"cannot read {file}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReplayError(f"{file} is not JSON: {exc}") from None
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
            exchange = finding.get("exchange") or {}
            request = exchange.get("request") or {}
            response = exchange.get("response") or {}
            headers = request.get("headers") or {}
            yield RecordedFinding(
                requirement=str(finding.get("requirement") or requirement.get("id")),
                summary=str(finding.get("summary") or ""),
                method=str(request.get("method") or ""),
                url=request.get("url") if isinstance(request.get("url"), str) else None,
                authenticated=any(str(k).lower() == "authorization" for k in headers),
                status=response.get("status") if isinstance(response.get("status"), int) else None,
            )


def rebased_path(url: str, recorded_base: str | None = None) -> str:
    """The path and query of a recorded URL relative to the recorded base URL, percent-encoding kept.

    A target behind a path prefix (https://host/sddc) keeps its prefix in the base URL, so the
    recorded prefix comes off here and the new base URL's prefix goes on in Target.send.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    prefix = urlsplit(recorded_base).path.rstrip("/") if recorded_base else ""
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix):] or "/"
    return path + (f"?{parts.query}" if parts.query else "")


def recorded_target(document: dict[str, Any]) -> str | None:
    target = document.get("target")
    url = target.get("url") if isinstance(target, dict) else None
    return url if isinstance(url, str) else None


def _judge(finding: RecordedFinding, exchange: Exchange, recorder: Recorder) -> ReplayResult:
    if exchange.response is None:
        raise ReplayUnreachable(f"{finding.method} {exchange.request.url}: {exchange.error}")
    if exchange.response.status in (401, 403) and finding.status not in (401, 403):
        raise ReplayUnauthorized(
            f"{finding.method} {exchange.request.url} answered {exchange.response.status}: "
            "the target refuses replay's credentials; pass --token or --username"
        )
    failed = [f for f in recorder.check(exchange) if f.requirement_id == finding.requirement]
    status = f"answered {exchange.response.status}"
    if finding.status is not None and finding.status != exchange.response.status:
        status += f" (recorded {finding.status})"
    if failed:
        return ReplayResult(finding, Verdict.STILL_FAILS, f"{status}: {failed[0].summary}")
    return ReplayResult(finding, Verdict.FIXED, status)


def replay(
    document: dict[str, Any], config: TargetConfig, on_outcome: Callable[[ReplayResult], None] | None = None
) -> list[ReplayResult]:
    """Re-send every replayable failing request once; raises TargetError when the target is gone."""
    target = Target(config)
    recorder = Recorder()
    outcomes: list[ReplayResult] = []
    seen: set[tuple[str, str, str]] = set()
    recorded_base = recorded_target(document)
    try:
        target.login()
        for finding in failing_findings(document):
            outcome = _replay_one(finding, target, recorder, seen, recorded_base)
            if outcome is None:
                continue
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        target.close()
    return outcomes


def _replay_one(
    finding: RecordedFinding,
    target: Target,
    recorder: Recorder,
    seen: set[tuple[str, str, str]],
    recorded_base: str | None,
) -> ReplayResult | None:
    if finding.requirement.startswith(SCENARIO_PREFIXES):
        return ReplayResult(finding, Verdict.NOT_REPLAYABLE)
    if not finding.url or not finding.method:
        return ReplayResult(finding, Verdict.NO_REQUEST)
    key = (finding.requirement, finding.method, finding.url)
    # The report keeps a few examples per requirement; the same request twice proves nothing new.
    if key in seen:
        return None
    seen.add(key)
    exchange = target.send(
        finding.method,
        rebased_path(finding.url, recorded_base),
        purpose=f"replay of {finding.requirement}",
        auth=finding.authenticated,
    )
    return _judge(finding, exchange, recorder)


def replay_target_url(document: dict[str, Any], base_url: str | None) -> str:
    url = base_url or recorded_target(document)
    if not url:
        raise ReplayError("the report records no target URL; pass --base-url")
    return public_url(url) if base_url is None else url
