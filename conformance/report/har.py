"""recording.har: every exchange of the run as HTTP Archive 1.2, written through `harfile`.

Browsers' developer tools, mitmproxy, Charles and HAR viewers open it. The engine redacted it
before it got here (engine.behaviour): Authorization is `Bearer [redacted]`, every form of the
run's token and password is `[redacted]`, and POST /v1/tokens (the login) is never recorded.
Bodies keep their first 64 KiB.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import harfile

import conformance
from conformance.files import replace_atomically
from conformance.model import RecordedExchange
from conformance.outcome import RunResult

RECORDING = "recording.har"


def _records(pairs: dict[str, str]) -> list[harfile.Record]:
    return [harfile.Record(name=name, value=value) for name, value in pairs.items()]


def _entry(har: harfile.HarFile, recorded: RecordedExchange) -> None:
    exchange = recorded.exchange
    request = exchange.request
    query = urlsplit(request.url).query
    har_request = harfile.Request(
        method=request.method, url=request.url, httpVersion="HTTP/1.1",
        headers=_records(request.headers),
        queryString=[harfile.Record(name=k, value=v) for k, v in parse_qsl(query, keep_blank_values=True)],
        bodySize=len(request.body) if request.body else 0,
        postData=harfile.PostData(mimeType="application/json", text=request.body.decode("utf-8", "replace"))
        if request.body else None,
    )
    response = exchange.response
    if response is None:
        # HAR's convention for a request that got no answer: status 0, the error as a comment.
        har_response = harfile.Response(status=0, statusText="", httpVersion="", comment=exchange.error)
        elapsed = 0.0
    else:
        try:
            text, encoding = response.body.decode("utf-8"), None
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(response.body).decode("ascii"), "base64"
        har_response = harfile.Response(
            status=response.status, statusText=response.reason, httpVersion="HTTP/1.1",
            headers=_records(response.headers),
            content=harfile.Content(size=len(response.body), mimeType=response.content_type, text=text,
                                    encoding=encoding,
                                    comment="cut to its first 64 KiB" if response.truncated else None),
            redirectURL=next((v for k, v in response.headers.items() if k.lower() == "location"), ""),
            bodySize=len(response.body),
        )
        elapsed = response.elapsed
    millis = round(elapsed * 1000, 3)
    har.add_entry(startedDateTime=recorded.started, time=millis, request=har_request, response=har_response,
                  timings=harfile.Timings(send=0, wait=millis, receive=0), comment=exchange.purpose or None)


def write_har(run: RunResult, directory: Path) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", errors="backslashreplace") as handle, harfile.HarFile(
                handle, creator=harfile.Creator(name="sddc-conformance", version=conformance.__version__)) as har:
            for recorded in sorted(run.recording, key=lambda r: r.started):
                _entry(har, recorded)

    return replace_atomically(directory / RECORDING, write)
