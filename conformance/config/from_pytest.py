"""--sddc-* options and sddc_* ini keys of a pytest run -> RunOptions (the pytest route in)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conformance.errors import ConfigError, UsageError
from conformance.model import Profile
from conformance.options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_TIMEOUT,
    RunOptions,
    read_password,
    tls_verify,
)
from conformance.tasks import collect_tasks

if TYPE_CHECKING:
    from conformance.config.file import LoadedConfig

# Every --sddc-* option can also be an ini option of the user's pytest configuration
# (`sddc_base_url = ...`); the command line beats the ini file. The token has no ini key on
# purpose: it belongs in SDDC_TOKEN, not in a committed file.
INI: dict[str, tuple[str, str]] = {
    "base_url": ("string", "target base URL; default: the embedded reference server"),
    "username": ("string", "user for POST /v1/tokens; password from env SDDC_PASSWORD"),
    "password_file": ("string", "file holding the password for the user"),
    "task": ("linelist", "tasks to use, one STATE=ID a line"),
    "tasks_file": ("string", "JSON file mapping statuses to task ids"),
    "profile": ("string", "schema | behavior | full"),
    "max_examples": ("string", "generated ids to send"),
    "seed": ("string", "same seed, same requests"),
    "max_requests": ("string", "request budget of the whole run"),
    "rate_limit": ("string", "requests per second at most"),
    "concurrency": ("string", "independent requests in flight at once"),
    "timeout": ("string", "seconds a whole request may take (connect, send, the whole answer)"),
    "settle_timeout": ("string", "seconds a 200 cancel may take to read CANCELLED"),
    "discover": ("bool", "list tasks through GET /v1/tasks"),
    "strict_urls": ("bool", "a 400/414 for a URL-hostile id fails SCH-STATUS"),
    "insecure": ("bool", "do not verify TLS certificates"),
    "ca_bundle": ("string", "CA bundle to verify the target's certificate"),
    "report_dir": ("string", "write the reports of a plain pytest run here"),
    "spec": ("string", "OpenAPI document whose Cancel Task is the contract"),
}
_PATHS = ("password_file", "tasks_file", "ca_bundle", "report_dir", "spec")
_NUMBERS = ("max_examples", "seed", "max_requests", "timeout", "rate_limit", "settle_timeout", "concurrency")


_FOUND = pytest.StashKey["tuple[LoadedConfig | None, str | None]"]()


def _found(config: pytest.Config) -> tuple[LoadedConfig | None, str | None]:
    """(the config file, a warning when pytest's rootdir is elsewhere), read once per pytest run.

    `--sddc-config FILE`, else sddc-conformance.toml (or pyproject's [tool.sddc-conformance]) in
    the directory pytest was started from, as `sddc-conformance run` reads it there, else in
    pytest's rootdir. Not the rootdir first: pytest chooses it before any plugin's options are
    known, so `--sddc-tasks-file ../x.json` (space-separated) reads as a path to test and moves
    the rootdir to a common ancestor, while `--sddc-tasks-file=../x.json` does not.
    """
    found = config.stash.get(_FOUND, None)
    if found is None:
        found = _find(config)
        config.stash[_FOUND] = found
    return found


def _find(config: pytest.Config) -> tuple[LoadedConfig | None, str | None]:
    from conformance.config.file import discover, load

    here = config.invocation_params.dir
    explicit = config.getoption("sddc_config", None)
    if explicit:
        given = here / Path(explicit).expanduser()
        if not given.is_file():
            raise ConfigError(f"--sddc-config {explicit}: no such file")
        return load(given), None
    path = discover(here) or (discover(config.rootpath) if config.rootpath != here else None)
    if path is None:
        return None, None
    loaded = load(path, display=path.name if path.parent == here else str(path))
    if path.parent == config.rootpath:
        return loaded, None
    return loaded, rootdir_warning(path, config.rootpath, config.invocation_params.args, here)


def rootdir_warning(path: Path, rootdir: Path, args: Sequence[str], here: Path) -> str:
    """Say that pytest's rootdir is not where the configuration is, and the likely cause."""
    text = (f"sddc-conformance: using {path}, which is not in pytest's rootdir {rootdir} (where pytest looks "
            "for its ini file and sddc_* keys)")
    for option, value in itertools.pairwise(args):
        # pytest takes any existing path among the arguments for one to test when it picks the rootdir.
        if option.startswith("--sddc-") and "=" not in option and (here / value).exists():
            return text + f"; write {option}={value}, so pytest does not take {value} for a path to test"
    return text + "; pass --rootdir to choose it"


def config_warning(config: pytest.Config) -> str | None:
    """The rootdir warning of this run, or None (also None when the file cannot be read)."""
    try:
        return _found(config)[1]
    except UsageError:
        return None


def file_values(config: pytest.Config) -> dict[str, Any]:
    """The values of the configuration file `sddc-conformance run` would read here (see _found)."""
    loaded = _found(config)[0]
    return dict(loaded.values) if loaded is not None else {}


def setting(config: pytest.Config, name: str) -> Any:
    """An --sddc-* option, else its ini value, else the config file's, else None."""
    value = config.getoption(f"sddc_{name}", None)
    if value not in (None, [], False):
        return value
    raw = config.getini(f"sddc_{name}") if name in INI else None
    if raw in ("", [], False, None):
        # The same file `sddc-conformance run` reads in this directory: one configuration for both.
        from_file = file_values(config).get(name.replace("_", "-"))
        return value if from_file is None else from_file
    if name in _NUMBERS:
        convert: type[int] | type[float] = float if name in ("timeout", "rate_limit", "settle_timeout") else int
        try:
            return convert(str(raw).strip())
        except ValueError:
            raise pytest.UsageError(f"ini option sddc_{name} must be a number, got {raw!r}") from None
    if name in _PATHS and config.inipath is not None:
        # Relative to the file that says it, as pytest does for its own path options.
        return str(config.inipath.parent / str(raw).strip())
    return raw.strip() if isinstance(raw, str) else raw


def configured_profile(config: pytest.Config) -> Profile:
    value = setting(config, "profile") or "full"
    try:
        return Profile(value)
    except ValueError:
        raise pytest.UsageError(f"sddc_profile must be schema, behavior or full, got {value!r}") from None


def options_from_pytest(config: pytest.Config) -> RunOptions:
    """The same RunOptions `sddc-conformance run` builds, validated by the same code."""
    tasks = collect_tasks(setting(config, "tasks_file"), setting(config, "task") or [], flag_prefix="--sddc-")
    username = setting(config, "username")
    password = read_password(setting(config, "password_file"), os.environ, option="--sddc-password-file")
    max_examples = setting(config, "max_examples")
    timeout = setting(config, "timeout")
    try:
        verify = tls_verify(bool(setting(config, "insecure")), setting(config, "ca_bundle"),
                            names=("--sddc-insecure", "--sddc-ca-bundle"))
        return RunOptions(
            base_url=setting(config, "base_url"),
            token=config.getoption("sddc_token", None) or os.environ.get("SDDC_TOKEN")
            or file_values(config).get("token"),
            username=username,
            password=password if username else None,
            tasks=tasks,
            discover=bool(setting(config, "discover")),
            strict_urls=bool(setting(config, "strict_urls")),
            profile=configured_profile(config),
            max_examples=DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples,
            seed=setting(config, "seed"),
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            max_requests=setting(config, "max_requests"),
            rate_limit=setting(config, "rate_limit"),
            concurrency=setting(config, "concurrency") or DEFAULT_CONCURRENCY,
            settle_timeout=setting(config, "settle_timeout"),
            verify=verify,
            spec=Path(setting(config, "spec")) if setting(config, "spec") else None,
            strict=bool(setting(config, "strict")),
            certify=bool(setting(config, "certify")),
            allow_cancel_discovered=bool(setting(config, "allow_cancel_discovered")),
            # NOT RUN hints then name --sddc-task, the option that exists under pytest.
            flag_prefix="--sddc-",
            # Demos and self-tests: the embedded server's defects, from the shared config file only.
            defects=tuple(file_values(config).get("defect") or ()),
        ).validate()
    except UsageError:
        raise
