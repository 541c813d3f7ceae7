"""The `run` command's parsed parameters (command line > environment > config file) -> RunOptions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conformance.errors import OptionsError
from conformance.model import Profile
from conformance.options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_MAX_REQUESTS,
    RunOptions,
    read_password,
    tls_verify,
)
from conformance.tasks import collect_tasks


def build_options(params: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> RunOptions:
    """One validated RunOptions from click's parameters; raises a UsageError naming the option."""
    environ = os.environ if environ is None else environ
    tasks = collect_tasks(params.get("tasks_file"), params.get("task_options") or ())
    verify = tls_verify(bool(params.get("insecure")), params.get("ca_bundle"))
    if params.get("base_url") is None and (params.get("token") or params.get("username") or tasks):
        raise OptionsError("--token, --username and --task/--tasks-file need --base-url")
    return RunOptions(
        base_url=params.get("base_url"),
        token=params.get("token"),
        username=params.get("username"),
        password=read_password(params.get("password_file"), environ) if params.get("username") else None,
        tasks=tasks,
        tasks_file=Path(params["tasks_file"]) if params.get("tasks_file") else None,
        task_flags=tuple(params.get("task_options") or ()),
        discover=bool(params.get("discover")),
        allow_cancel_discovered=bool(params.get("allow_cancel_discovered")),
        profile=Profile(params.get("profile") or "full"),
        max_examples=params.get("max_examples") or DEFAULT_MAX_EXAMPLES,
        seed=params.get("seed"),
        max_requests=params.get("max_requests") or DEFAULT_MAX_REQUESTS,
        rate_limit=params.get("rate_limit"),
        concurrency=params.get("concurrency") or DEFAULT_CONCURRENCY,
        timeout=params.get("timeout") or 10.0,
        settle_timeout=params.get("settle_timeout"),
        verify=verify,
        strict=bool(params.get("strict")),
        strict_urls=bool(params.get("strict_urls")),
        certify=bool(params.get("certify")),
        record=bool(params.get("record")),
        dry_run=bool(params.get("dry_run")),
        report_dir=Path(params["report_dir"]) if params.get("report_dir") else None,
        defects=tuple(params.get("defects") or ()),
        spec=Path(params["spec"]) if params.get("spec") else None,
    ).validate()
