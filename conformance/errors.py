"""Every error the suite raises on purpose, in one tree; each class carries its exit code.

    SddcError                     (4) a bug: the suite could not do what it was asked
     ├── UsageError               (2) the user's input is wrong: options, files, ids, reports
     │    ├── OptionsError            a flag, or a combination of flags
     │    ├── ConfigError             a config or targets file
     │    ├── TasksFileError          --task / --tasks-file
     │    ├── StaleTasks              handed-over task ids the target does not know
     │    ├── ReportError             a report, findings.json or bundle that cannot be used
     │    └── ContractError           a --spec / spec diff document that cannot be used
     ├── NoVerdict                (3) the target could not be judged
     │    ├── TargetUnreachable       no answer at all (connection, TLS, timeout)
     │    ├── AuthenticationFailed    the credentials were refused
     │    ├── TargetStoppedAnswering  the target went away mid-run
     │    └── Backpressure            the target kept answering 429/503 past every retry
     ├── Interrupted              (130) Ctrl-C or SIGTERM
     └── SuiteCrashed             (4) the suite's own tests could not run
    BudgetExhausted               flow control inside a run (the request budget is spent); never an exit

Modelled on httpx's `_exceptions.py`: callers catch the branch they mean, and only the CLI turns a
class into an exit code, through `exit_code`. A ValueError that is not a UsageError is a bug.
"""

from __future__ import annotations

from conformance.outcome import ExitCode


class SddcError(Exception):
    """Base of every deliberate error of the suite."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR


class UsageError(SddcError, ValueError):
    """The user's input is wrong; nothing about the target is judged."""

    exit_code = ExitCode.USAGE_ERROR


class OptionsError(UsageError):
    """A flag or a combination of flags is wrong."""


class ConfigError(UsageError):
    """A config file or a targets file is unreadable or invalid."""


class TasksFileError(UsageError):
    """--task or --tasks-file is malformed."""


class StaleTasks(UsageError):
    """Handed-over task ids that the target does not know: the user's mistake, not the target's."""


class ReportError(UsageError):
    """A report directory, findings.json or bundle that cannot be read or used."""


class ContractError(UsageError):
    """An OpenAPI document that cannot serve as the contract (unreadable, no cancel operation)."""


class NoVerdict(SddcError):
    """The target could not be judged: the run ends with NO VERDICT."""

    exit_code = ExitCode.NO_VERDICT


# The name the rest of the code has always used for this branch.
TargetError = NoVerdict


class TargetUnreachable(NoVerdict):
    """No answer: connection refused, DNS, TLS or timeout."""


class AuthenticationFailed(NoVerdict):
    """The target refused the credentials (or the token expired beyond recovery)."""


class TargetStoppedAnswering(NoVerdict):
    """The target answered at first, then stopped; `exchange` is the last failed one, for the reports."""

    def __init__(self, message: str, exchange: object | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange


class Backpressure(NoVerdict):
    """The target kept asking the suite to slow down (429, or 503 with Retry-After) past every retry."""


class Interrupted(SddcError):
    """Ctrl-C or SIGTERM: the run stops sending and keeps what it saw."""

    exit_code = ExitCode.INTERRUPTED


class SuiteCrashed(SddcError):
    """pytest could not run the suite itself (a bug in the suite, not a finding)."""


class BudgetExhausted(SddcError):
    """The run's request budget is spent; raised inside a run to stop sending, never an exit."""


def exit_code_of(exc: BaseException) -> ExitCode:
    """The documented exit code for an exception that reached the CLI."""
    if isinstance(exc, SddcError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INTERNAL_ERROR
