"""Run options: one dataclass that the CLI, the pytest plugin and the config file all fill in."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from conformance.errors import OptionsError
from conformance.model import Profile
from conformance.text import clean_line

# Thorough and fast: ~250 cancels (150 generated ids and the fixed scenarios) cover every id
# shape many times over and finish in a few seconds; see the benchmark in benchmarks/.
DEFAULT_MAX_EXAMPLES = 150
# Gentle on an appliance: a full default run needs about 600 requests; the cap stops runaway loops.
DEFAULT_MAX_REQUESTS = 1000
# Seconds a whole request may take: connect, send, headers and body (engine/deadline.py). A real
# appliance answers in tens to hundreds of milliseconds; 10 s leaves room for a loaded one, and a
# target that trickles its answer is cut there instead of holding the run.
DEFAULT_TIMEOUT = 10.0
DEFAULT_CONCURRENCY = 8
# How long a 200 cancel may take to read CANCELLED. Appliances cancel asynchronously ("the
# operation may return before the task is canceled"): 30 s covers a task service that stops a
# workflow between two steps, and bounds a run against one that never settles (docs/DESIGN.md).
DEFAULT_SETTLE_TIMEOUT = 30.0
# The embedded reference server settles in ReferenceConfig.settle_seconds (1 s): 5 s is ample.
EMBEDDED_SETTLE_TIMEOUT = 5.0


@dataclass(frozen=True)
class RunOptions:
    base_url: str | None = None
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tasks: dict[str, list[str]] = field(default_factory=dict)
    # Where `tasks` came from, for the re-run command: the file as given and the --task flags.
    tasks_file: Path | None = None
    task_flags: tuple[str, ...] = ()
    discover: bool = False
    allow_cancel_discovered: bool = False
    profile: Profile = Profile.FULL
    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: int | None = None
    max_requests: int | None = DEFAULT_MAX_REQUESTS
    rate_limit: float | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    strict: bool = False
    # A 400/414 for a URL-hostile id fails SCH-STATUS (default: information under SCH-URL-LAYER).
    strict_urls: bool = False
    certify: bool = False
    # Keep every exchange, redacted, for recording.har (`run --record`).
    record: bool = False
    dry_run: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    report_dir: Path | None = None
    # Reference-server defects for the embedded target (the suite's own tests and demos).
    defects: tuple[str, ...] = ()
    # An OpenAPI document whose Cancel Task is the contract (`run --spec`); None: the shipped fragment.
    spec: Path | None = None
    # How the options are spelled where the user typed them ("--" for the CLI, "--sddc-" under
    # pytest), so hints like "pass --task IN_PROGRESS=<id>" name an option that exists there.
    flag_prefix: str = "--"
    # Seconds a 200 cancel may take to read CANCELLED; None: 30 s (5 s for the embedded server).
    settle_timeout: float | None = None
    # The embedded server's settle time for its async-cancel-* entries (the suite's own tests).
    reference_settle_seconds: float | None = None

    def validate(self) -> RunOptions:
        if self.max_examples < 1:
            raise OptionsError("--max-examples must be at least 1")
        if self.max_requests is not None and self.max_requests < 1:
            raise OptionsError("--max-requests must be at least 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise OptionsError("--rate-limit must be a positive number of requests per second")
        if self.timeout <= 0:
            raise OptionsError("--timeout must be a positive number of seconds")
        if self.settle_timeout is not None and not 0 <= self.settle_timeout <= 3600:
            raise OptionsError("--settle-timeout must be between 0 and 3600 seconds")
        if not 1 <= self.concurrency <= 32:
            raise OptionsError("--concurrency must be between 1 and 32")
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise OptionsError(f"--base-url {self.base_url!r} must start with http:// or https://")
        if self.base_url is not None:
            _check_base_url(self.base_url)
        # A dry run sends nothing, so it needs no password.
        if self.username and not self.password and not self.dry_run:
            raise OptionsError(
                "--username needs a password: set SDDC_PASSWORD or pass --password-file "
                "(a password is never taken from the command line)"
            )
        if self.defects and self.base_url:
            raise OptionsError("--defect applies to the embedded reference server; drop --base-url")
        return self


def _check_base_url(url: str) -> None:
    """Refuse user:password@ (never echoed: it is a secret), a bad port and unsafe characters."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # The URL itself is not shown: it holds the password.
        raise OptionsError("--base-url must not carry user:password@; use --username or --token")
    if re.search(r"[\s\x00-\x1f\x7f-\x9f\\]", url) or not parts.hostname:
        raise OptionsError(f"--base-url {clean_line(repr(url))} is not a valid http(s) URL")
    try:
        parts.port  # noqa: B018 - urllib raises ValueError for host:port:port or a port out of range
    except ValueError:
        raise OptionsError(f"--base-url {clean_line(repr(url))} has an invalid port") from None
    if parts.query or parts.fragment:
        raise OptionsError(f"--base-url {clean_line(repr(url))} must not carry a query or fragment")
    if parts.path.rstrip("/").lower().endswith("/v1"):
        # The suite adds /v1/tokens and /v1/tasks itself: this URL would send /v1/v1/... and every
        # 404 would be blamed on the target. A prefix of the appliance's own is kept (/sddc-api).
        fixed = url[: url.lower().rstrip("/").rindex("/v1")]
        raise OptionsError(f"--base-url {clean_line(repr(url))} ends in /v1, which the suite adds itself "
                           f"(/v1/tokens, /v1/tasks): pass --base-url {clean_line(fixed)}")


def tls_verify(insecure: bool, ca_bundle: str | None,
               names: tuple[str, str] = ("--insecure", "--ca-bundle")) -> bool | str:
    """What requests' `verify` gets: False for --insecure, a CA bundle path, or True.

    Every route in (command line, config file, pytest) goes through here, so they all refuse the
    same contradiction.
    """
    if insecure and ca_bundle:
        raise OptionsError(f"{names[0]} and {names[1]} contradict each other")
    if insecure:
        return False
    return str(ca_bundle) if ca_bundle else True


def read_password(password_file: str | None, environ: Mapping[str, str],
                  option: str = "--password-file") -> str | None:
    """The password from a file, else from SDDC_PASSWORD; never from the command line."""
    if password_file:
        try:
            return Path(password_file).read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise OptionsError(f"cannot read {option} {password_file}: {reason}") from None
    return environ.get("SDDC_PASSWORD") or None
