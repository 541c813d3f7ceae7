"""`sddc-conformance compare BASELINE [CANDIDATE]`: does the candidate behave like the baseline?

Each side is a report directory (its profile.json), a profile.json file, or, for the candidate,
a live target: `--base-url` with its own credentials and task pool, run with the baseline's seed,
profile and --max-examples so both sides send the same kinds of ids.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from conformance.cli.group import cli, connection_options, fail
from conformance.outcome import ExitCode, exit_codes_epilog

COMPARE_EXIT_CODES = exit_codes_epilog(
    {
        ExitCode.OK: "nothing would break a client (tolerated differences may be listed)",
        ExitCode.NOT_CONFORMANT: "a difference would break a client",
        ExitCode.USAGE_ERROR: "usage error: a side is not a report directory or profile.json, a bad option",
        ExitCode.NO_VERDICT: "the live target could not be judged (unreachable, refused the credentials)",
    },
    only=(ExitCode.OK, ExitCode.NOT_CONFORMANT, ExitCode.USAGE_ERROR, ExitCode.NO_VERDICT,
          ExitCode.INTERNAL_ERROR, ExitCode.INTERRUPTED),
)
# The most a profile file may weigh: real ones are tens of KiB.
MAX_PROFILE_BYTES = 8 * 1024 * 1024


def load_profile(path: Path) -> dict[str, Any]:
    """A side given as a report directory or a profile file; ProfileError when it is neither."""
    from conformance.bodies import decode_json
    from conformance.report.compare import ProfileError, check_profile

    file = path / "profile.json" if path.is_dir() else path
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{file} is larger than a profile.json can be")
    decoded = decode_json(raw)
    if not decoded.ok:
        raise ProfileError(f"{file} is not JSON: {decoded.error}")
    return check_profile(decoded.value, str(file))


def _live_profile(baseline: dict[str, Any], live: dict[str, Any], report_dir: str | None) -> tuple[int, Path]:
    """Run the suite against the live candidate like the baseline's run; its exit code and reports."""
    from conformance.cli.run import run as run_command

    recorded: dict[str, Any] = baseline["run"] if isinstance(baseline.get("run"), dict) else {}
    directory = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix="sddc-compare-")) / "candidate"
    argv = ["--report-dir", str(directory), "--quiet"]
    for key in ("seed", "max_examples"):
        given = live.pop(key)
        value = given if given is not None else recorded.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    profile = live.pop("profile") or recorded.get("profile")
    if profile in ("schema", "behavior", "full"):
        argv += ["--profile", str(profile)]
    # Everything else as given; None leaves the run's own default.
    for key, value in live.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif isinstance(value, tuple):
            argv += [f"{flag}={v}" for v in value]
        elif value is not None:
            argv += [flag, str(value)]
    try:
        # The caller's context object: a compare that owns its process runs like `run` from the
        # command line (helper processes), so it draws the same ids as a baseline recorded there.
        # The run's own line goes to standard error: standard output is the table (or JSON).
        with contextlib.redirect_stdout(sys.stderr):
            run_command.main(argv, prog_name="sddc-conformance run", standalone_mode=False,
                             obj=click.get_current_context().obj)
    except SystemExit as exc:
        return int(exc.code or 0), directory
    return 0, directory


@cli.command(epilog=COMPARE_EXIT_CODES)
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path), required=False)
@click.option("--format", "output_format", type=click.Choice(["console", "markdown", "html", "json"]),
              default="console", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table here instead of standard output.")
@click.option("--base-url", metavar="URL", help="Candidate: a live target, run like the baseline's run.")
@click.option("--token", envvar="SDDC_TOKEN", show_envvar=True, help="Bearer token of the live target.")
@click.option("--username", help="Live target: user for POST /v1/tokens (password from SDDC_PASSWORD).")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Live target: file holding the password.")
@click.option("--task", "task", multiple=True, metavar="STATE=ID", help="Live target: a task the suite may use.")
@click.option("--tasks-file", type=click.Path(dir_okay=False), help="Live target: JSON task pool.")
@click.option("--profile", type=click.Choice(["schema", "behavior", "full"]),
              help="Live target: run profile [default: the baseline's].")
@click.option("--seed", type=click.IntRange(min=0), help="Live target [default: the baseline's seed].")
@click.option("--max-examples", type=click.IntRange(min=1), help="Live target [default: the baseline's].")
@click.option("--report-dir", type=click.Path(file_okay=False),
              help="Live target: where its run's reports go [default: a fresh temporary directory].")
@connection_options
def compare(baseline: Path, candidate: Path | None, output_format: str, output: Path | None,
            **live: Any) -> None:
    """Compare what two targets did: report directories, profile.json files, or a live --base-url."""
    from conformance.report.compare import RENDERERS, ProfileError, breaks, diff_profiles, headline

    report_dir = live.pop("report_dir")
    try:
        base = load_profile(baseline)
        if candidate is not None:
            if live["base_url"]:
                fail("give CANDIDATE or --base-url, not both", ExitCode.USAGE_ERROR)
            cand, cand_name = load_profile(candidate), str(candidate)
        else:
            if not live["base_url"]:
                fail("give CANDIDATE (a report directory or profile.json) or a live --base-url",
                     ExitCode.USAGE_ERROR)
            code, directory = _live_profile(base, live, report_dir)
            if code not in (ExitCode.OK, ExitCode.NOT_CONFORMANT):
                # The run said why in its own line; no profile to compare.
                sys.exit(code)
            cand, cand_name = load_profile(directory), str(live["base_url"])
        differences = diff_profiles(base, cand)
    except ProfileError as exc:
        fail(str(exc), ExitCode.USAGE_ERROR)
    except (TypeError, ValueError, AttributeError, KeyError):
        # A profile is an untrusted file: a field of the wrong type is the file's fault, one line.
        fail("a profile holds a field of the wrong type (not written by sddc-conformance, or edited)",
             ExitCode.USAGE_ERROR)
    text = RENDERERS[output_format](differences, str(baseline), cand_name)
    if output is not None:
        try:
            output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}", ExitCode.USAGE_ERROR)
        click.echo(headline(differences))
    else:
        click.echo(text.rstrip("\n"))
    sys.exit(ExitCode.NOT_CONFORMANT if breaks(differences) else ExitCode.OK)
