"""`sddc-conformance run --targets FILE [--shard K/N]` and `fleet merge`: several targets, side by side.

With `--shard K/N` only the K-th slice runs (report/fleet_shard.py has the rule) and `shard.json`
is left for `fleet merge`, which verifies the shards of every machine (report/fleet_merge.py)
and writes the index a single run would have written; this module turns its result into an
exit code.

Each target gets its own `sddc-conformance run` in its own process, several at a time, its
reports in `<report-dir>/<name>/`, and `<report-dir>/index.html` + `index.md` compare the
verdicts requirement by requirement.

Why one process per target and not pytest-xdist: xdist splits the items of *one* pytest session
across workers, while every target here needs a session of its own (target, task pool,
recorder, seed, reports). The session is no longer a module global (it travels in pytest's
`config.stash`), but `pytest.main` itself is not re-entrant across threads: it installs import
hooks, rewrites `sys.modules` for the suite's test modules, swaps warnings filters and captures
the process's output. A child process per target is isolated for free (a hung or crashed
target cannot take the others down), its exit code is its verdict, and Ctrl-C reaches each.
Threads only wait on those children, so a thread pool does the job of a process pool without
forking a pytest-bearing interpreter.

Secrets never reach a command line: each child gets its options as a generated config file
(in a private temporary directory, outside the report directory whose manifest must stay
exact) and its token through the SDDC_TOKEN variable of its own environment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from conformance import requirements
from conformance.cli.group import EXIT_CODES, cli
from conformance.config.file import KEYS, MAX_FILE_BYTES, BadValue, loads_json, read_toml, validate_table
from conformance.errors import ConfigError, UsageError
from conformance.files import default_report_dir
from conformance.outcome import ExitCode, exit_codes_epilog
from conformance.report.fleet_index import TargetRun, write_index
from conformance.report.fleet_merge import TARGET_NAME, merge
from conformance.report.fleet_shard import build_record, parse_shard, select, write_record
from conformance.text import strip_controls

# Worst first decides the fleet's exit code: a broken suite, then a target entry that could not
# even be run (the user's file to fix), then no verdict, then a failed verdict.
_SEVERITY_ORDER = (
    ExitCode.OK,
    ExitCode.NOT_CONFORMANT,
    ExitCode.NO_VERDICT,
    ExitCode.INTERRUPTED,
    ExitCode.USAGE_ERROR,
    ExitCode.INTERNAL_ERROR,
)

# Options that only make sense for one target; given on the command line with --targets they
# would silently apply to every target, so they are refused there.
PER_TARGET = ("base-url", "token", "username", "password-file", "task", "tasks-file", "defect")
_NAME = TARGET_NAME

def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise BadValue("a name of letters, digits, '.', '_' or '-' (it becomes a directory)")
    return value


def _parallel(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 32:
        raise ConfigError(f"'parallel' must be a whole number between 1 and 32, got {json.dumps(value)}")
    return value


@dataclass(frozen=True)
class TargetEntry:
    name: str
    options: dict[str, Any]  # config-file keys, validated, paths absolute


@dataclass(frozen=True)
class Fleet:
    targets: tuple[TargetEntry, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    parallel: int | None = None


def load_fleet(path: Path, environ: Mapping[str, str] | None = None) -> Fleet:
    """Read and validate a targets file (TOML, or JSON by its .json suffix)."""
    source = str(path)
    if path.suffix.lower() == ".json":
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
        # Depth-bounded and UTF-8-checked: a hostile targets file is a usage error (exit 2).
        document: Any = loads_json(raw, source)
        if isinstance(document, list):
            document = {"targets": document}
    else:
        document = read_toml(path, source)
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected an object with a 'targets' list")
    unknown = set(document) - {"targets", "defaults", "parallel"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key '{sorted(unknown)[0]}' (expected targets, defaults, parallel)"
        )
    entries = document.get("targets")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: 'targets' must be a non-empty list of targets")
    base_dir = path.parent
    defaults_table = document.get("defaults", {})
    if not isinstance(defaults_table, dict):
        raise ConfigError(f"{source}: 'defaults' must be a table of run options")
    _refuse(defaults_table, f"{source}: defaults", ("report-dir", "base-url"))
    defaults = validate_table(defaults_table, f"{source}: defaults", base_dir=base_dir, environ=environ)
    targets: list[TargetEntry] = []
    for index, entry in enumerate(entries):
        where = f"{source}: targets[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table of options")
        if "name" not in entry:
            raise ConfigError(f"{where} needs a 'name'")
        where = f"{source}: target '{entry['name']}'"
        _refuse(entry, where, ("report-dir",))
        values = validate_table(entry, where, base_dir=base_dir, environ=environ, extra={"name": _name})
        name = values.pop("name")
        if any(t.name == name for t in targets):
            raise ConfigError(f"{source}: two targets are named '{name}'")
        targets.append(TargetEntry(name, values))
    parallel = _parallel(document["parallel"]) if "parallel" in document else None
    return Fleet(tuple(targets), defaults, parallel)


def _refuse(table: Mapping[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in table:
            raise ConfigError(f"{where}: '{key}' is set by the fleet (one directory per target under --report-dir)"
                              if key == "report-dir" else f"{where}: '{key}' belongs to each target")


# -- running -----------------------------------------------------------------------------------------

def worst_exit(codes: list[int]) -> int:
    def rank(code: int) -> int:
        return _SEVERITY_ORDER.index(code) if code in _SEVERITY_ORDER else len(_SEVERITY_ORDER)

    return max(codes, key=rank) if codes else int(ExitCode.OK)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # The child interpolates ${...} again: a literal `$` must survive it.
        return json.dumps(value.replace("$", "$$"), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def child_config(options: Mapping[str, Any]) -> str:
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in options.items())


def child_environment(options: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    # Each target names its own URL; a fleet-wide SDDC_BASE_URL would override them all.
    env.pop("SDDC_BASE_URL", None)
    if "token" in options:
        env["SDDC_TOKEN"] = options["token"]
    if "password-file" in options:
        # The child prefers SDDC_PASSWORD over a file from its config; this target named its own.
        env.pop("SDDC_PASSWORD", None)
    # The children are quiet and their output is captured: no live display.
    env.setdefault("NO_COLOR", "1")
    return env


def run_one(name: str, options: Mapping[str, Any], report_dir: Path, workdir: Path,
            environ: Mapping[str, str]) -> TargetRun:
    config = workdir / f"{name}.toml"
    child_options = {k: v for k, v in options.items() if k != "token"}
    child_options |= {"report-dir": str(report_dir), "quiet": True}
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(child_config(child_options))
    completed = subprocess.run(
        # -P: not the working directory's `conformance`, if there is one (see engine/helper.py).
        [sys.executable, "-P", "-m", "conformance", "run", "--config", str(config)],
        env=child_environment(options, environ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    output = (completed.stdout + completed.stderr).strip()
    return TargetRun(name, completed.returncode, report_dir, output)


def plan_options(fleet: Fleet, shared_from_config: Mapping[str, Any],
                 shared_from_cli: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Options of each target: config file < targets-file defaults < target entry < command line."""
    return {
        t.name: {**shared_from_config, **fleet.defaults, **t.options, **shared_from_cli} for t in fleet.targets
    }


def run_fleet(fleet: Fleet, report_root: Path, options: Mapping[str, dict[str, Any]], *,
              environ: Mapping[str, str] | None = None,
              echo: Callable[[str], None] = click.echo) -> list[TargetRun]:
    env = os.environ if environ is None else environ
    # Absolute: the children resolve relative paths against their generated config's directory.
    report_root = report_root.resolve()
    report_root.mkdir(parents=True, exist_ok=True)
    workers = fleet.parallel or max(1, min(len(fleet.targets), os.cpu_count() or 2, 8))
    runs: dict[str, TargetRun] = {}
    with tempfile.TemporaryDirectory(prefix="sddc-fleet-") as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(run_one, t.name, options[t.name], report_root / t.name, Path(tmp), env): t.name
            for t in fleet.targets
        }
        for future in as_completed(futures):
            result = future.result()
            runs[result.name] = result
            last = result.output.splitlines()[-1].strip() if result.output else ""
            # The child's last line is its verdict line or its error; do not repeat the verdict.
            detail = last.removeprefix(result.status).lstrip(":,").strip()
            echo(f"[{result.name}] {result.status} (exit {result.exit_code}){': ' + detail if detail else ''}")
    return [runs[t.name] for t in fleet.targets]


# -- the command -----------------------------------------------------------------------------------------

def _by_param() -> dict[str, str]:
    return {key.param: name for name, key in KEYS.items()}


def _cli_value(name: str, value: Any) -> Any:
    if name in ("report-dir", "ca-bundle", "password-file", "tasks-file"):
        return str(Path(value).resolve())
    if isinstance(value, tuple):
        return list(value)
    return value


def fleet_command(targets_file: str, params: Mapping[str, Any], ctx: click.Context, shard: str | None = None) -> int:
    """Split `run`'s parameters by where they came from, run every target (or one shard's), write the index."""
    names = _by_param()
    from_config: dict[str, Any] = {}
    from_cli: dict[str, Any] = {}
    for param, value in params.items():
        name = names.get(param)
        source = ctx.get_parameter_source(param)
        if name is None or name in ("quiet", "report-dir") or source in (None, ParameterSource.DEFAULT):
            continue
        if name in PER_TARGET:
            if source is ParameterSource.COMMANDLINE:
                click.echo(f"sddc-conformance: error: --{name} is per target with --targets; "
                           f"set it on each target in {targets_file}", err=True)
                return int(ExitCode.USAGE_ERROR)
            # From the environment (SDDC_TOKEN, SDDC_BASE_URL) or the single-target config file:
            # children inherit the environment themselves; the file's target does not apply.
            continue
        if source is ParameterSource.DEFAULT_MAP:
            from_config[name] = _cli_value(name, value)
        else:
            from_cli[name] = _cli_value(name, value)
    try:
        spec = parse_shard(shard) if shard is not None else None
        fleet = load_fleet(Path(targets_file))
        # The bytes the fleet was read from: a merge tells shards of another targets file by it.
        targets_sha256 = hashlib.sha256(Path(targets_file).read_bytes()).hexdigest()
    except (UsageError, OSError) as exc:
        click.echo(f"sddc-conformance: error: {exc}", err=True)
        return int(ExitCode.USAGE_ERROR)
    all_names = [t.name for t in fleet.targets]
    if spec is not None:
        mine = set(select(all_names, spec))
        fleet = dataclasses.replace(fleet, targets=tuple(t for t in fleet.targets if t.name in mine))
    report_root = Path(params["report_dir"]) if params.get("report_dir") else default_report_dir()
    plan = plan_options(fleet, from_config, from_cli)
    count = len(fleet.targets)
    of_shard = f" (shard {spec} of {len(all_names)})" if spec is not None else ""
    click.echo(f"checking {count} target{'' if count == 1 else 's'}{of_shard}; reports in {report_root}/<target>/")
    try:
        runs = run_fleet(fleet, report_root, plan)
        code = worst_exit([r.exit_code for r in runs])
        html_path, md_path = write_index(runs, report_root, requirements.catalogue(), exit_code=code)
        if spec is not None:
            # Last: it pins the manifests the targets wrote.
            write_record(report_root.resolve(), build_record(spec, all_names, targets_sha256, runs))
    except OSError as exc:
        click.echo(f"sddc-conformance: error: cannot write reports to {report_root}: {exc.strerror or exc}", err=True)
        return int(ExitCode.USAGE_ERROR)
    if not params.get("quiet"):
        click.echo(md_path.read_text(encoding="utf-8"), nl=False)
    click.echo(f"index: {html_path}")
    return code


# -- fleet merge ---------------------------------------------------------------------------------------

MERGE_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "every target of the fleet is conformant and every piece of evidence verified",
        ExitCode.NOT_CONFORMANT: "a target is not conformant, or evidence was refused (tampered, foreign, "
        "duplicate, added): named on the output",
        ExitCode.USAGE_ERROR: "an input is not a shard, report or bundle; -o is not empty; nothing to merge",
        ExitCode.NO_VERDICT: "a target has no verdict: unreachable, or its shard never arrived (named)",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR, ExitCode.NO_VERDICT, ExitCode.INTERNAL_ERROR),
)


def merge_exit(runs: list[TargetRun], refused: bool) -> int:
    """The --targets rule over the targets; refused evidence makes it 1, as `verify` answers a tampered bundle."""
    code = worst_exit([r.exit_code for r in runs])
    return int(ExitCode.NOT_CONFORMANT) if refused else code


@cli.group(epilog=EXIT_CODES)
def fleet() -> None:
    """Fleets spread over several machines: merge the shards of `run --targets FILE --shard K/N`."""


@fleet.command("merge", epilog=MERGE_EXIT_CODES)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Directory to write the merged fleet to (created; an existing one must be empty).")
@click.option("--quiet", "-q", is_flag=True,
              help="Leave out the markdown index: one line per target, the problems, the last line.")
def merge_command(inputs: tuple[Path, ...], output: Path, quiet: bool) -> None:
    """Verify shard directories, report directories or bundles and write one fleet index."""
    from conformance.cli.group import fail

    try:
        result = merge(list(inputs), output)
        code = merge_exit(result.runs, result.refused)
        html_path, md_path = write_index(result.runs, output, requirements.catalogue(), exit_code=code,
                                         problems=result.problems)
    except UsageError as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)
    for run in result.runs:
        detail = f": {run.note}" if run.note else ""
        click.echo(strip_controls(f"[{run.name}] {run.status} (exit {run.exit_code}){detail}"))
    for line in result.problems:
        click.echo(line)
    if not quiet:
        click.echo(strip_controls(md_path.read_text(encoding="utf-8")), nl=False)
    verdict = "REFUSED EVIDENCE" if result.refused else "merged"
    click.echo(f"{verdict}: {len(result.runs)} targets, exit {code}; index: {html_path}")
    sys.exit(code)
