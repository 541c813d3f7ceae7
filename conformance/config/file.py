"""`sddc-conformance.toml` (or `[tool.sddc-conformance]` in pyproject.toml): `run` options in a file.

Keys are the `run` flags without their dashes (`max-examples = 20`). String values may name
environment variables as `${NAME}` so secrets stay out of the file; `$$` is a literal `$`.
A literal password is refused: like the CLI, passwords come from SDDC_PASSWORD or a
password-file only.

The file becomes click's `default_map` for `run`, so click itself gives the precedence
command line > environment (options with an envvar) > file > built-in defaults. SDDC_PASSWORD
is not a click option, so `password-file` from a file is dropped here when it is set.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.bodies import MAX_JSON_DEPTH, decode_json, json_depth
from conformance.errors import ConfigError

# Config and targets files are a few KiB; the cap keeps a wrong path (a disk image) cheap.
MAX_FILE_BYTES = 4 * 1024 * 1024

FILE_NAME = "sddc-conformance.toml"
PYPROJECT = "pyproject.toml"
PYPROJECT_SECTION = "sddc-conformance"


Converter = Callable[[Any], Any]


def _describe(value: Any) -> str:
    # TOML-looking rendering so the message shows what the user typed: "ten", 0, true, [...]
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class BadValue(ValueError):
    """A value of the wrong kind; the message completes "'key' must be ..."."""


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadValue("a non-empty string")
    return value


def _path(value: Any) -> str:
    return _string(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadValue("true or false")
    return value


def _whole(minimum: int) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BadValue(f"a whole number of at least {minimum}")
        return value

    return convert


def _positive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise BadValue("a positive number")
    return float(value)


def _choice(*choices: str) -> Converter:
    def convert(value: Any) -> str:
        if value not in choices:
            raise BadValue("one of " + ", ".join(choices))
        return str(value)

    return convert


def _strings(value: Any) -> list[str]:
    # One string is accepted where a list is expected, as on the command line.
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadValue("a list of non-empty strings")
    return list(value)


@dataclass(frozen=True)
class Key:
    name: str  # as written in the file: the flag without its leading dashes
    param: str  # the `run` command's parameter it fills
    convert: Converter
    path: bool = False  # resolved against the file's directory
    example: str = ""  # value shown in the starter file
    help: str = ""


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("base-url", "base_url", _string, example='"https://sddc-manager.example.com"', help="target"),
        Key("token", "token", _string, example='"${SDDC_TOKEN}"', help="bearer token; keep it in the environment"),
        Key("username", "username", _string, example='"administrator@vsphere.local"',
            help="user for POST /v1/tokens; password from env SDDC_PASSWORD or password-file"),
        Key("password-file", "password_file", _path, path=True, example='"~/.sddc-password"',
            help="file holding the password (never the password itself)"),
        Key("tasks-file", "tasks_file", _path, path=True, example='"state.json"',
            help="JSON mapping statuses to task ids"),
        Key("task", "task_options", _strings, example='["IN_PROGRESS=1b2c3d4e-...", "SUCCESSFUL=9f8e..."]',
            help="tasks the suite may use; IN_PROGRESS ones WILL be cancelled"),
        Key("discover", "discover", _flag, example="false", help="find tasks read-only through GET /v1/tasks"),
        Key("allow-cancel-discovered", "allow_cancel_discovered", _flag, example="false",
            help="also cancel discovered IN_PROGRESS tasks"),
        Key("profile", "profile", _choice("schema", "behavior", "full"), example='"schema"',
            help="schema | behavior | full"),
        Key("certify", "certify", _flag, example="false", help="fail unless every MUST ran and passed"),
        Key("strict", "strict", _flag, example="false", help="a failed SHOULD fails the run"),
        Key("strict-urls", "strict_urls", _flag, example="false",
            help="a 400/414 for a URL-hostile id fails SCH-STATUS"),
        Key("max-examples", "max_examples", _whole(1), example="150", help="generated ids"),
        Key("seed", "seed", _whole(0), example="1", help="same seed, same requests"),
        Key("max-requests", "max_requests", _whole(1), example="300", help="request budget of the whole run"),
        Key("rate-limit", "rate_limit", _positive, example="5", help="requests per second at most"),
        Key("concurrency", "concurrency", _whole(1), example="8",
            help="independent requests in flight at once (and cancels in the race)"),
        Key("timeout", "timeout", _positive, example="10",
            help="seconds a whole request may take (connect, send, the whole answer)"),
        Key("settle-timeout", "settle_timeout", _positive, example="30",
            help="seconds a 200 cancel may take to read CANCELLED"),
        Key("ca-bundle", "ca_bundle", _path, path=True, example='"sddc-ca.pem"',
            help="CA bundle to verify the target's TLS certificate"),
        Key("insecure", "insecure", _flag, example="false", help="do not verify TLS certificates"),
        Key("record", "record", _flag, example="false",
            help="also write recording.har: every exchange, redacted, as HTTP Archive 1.2"),
        Key("dry-run", "dry_run", _flag, example="false", help="print what would be sent, send nothing"),
        Key("report-dir", "report_dir", _path, path=True, example='"reports/latest"',
            help="where reports go (default reports/<timestamp>/)"),
        Key("spec", "spec", _path, path=True, example='"vcf-api-9.0.2.0.json"',
            help="OpenAPI document whose Cancel Task is the contract (default: the shipped fragment)"),
        Key("defect", "defects", _strings, example='["racing-cancels"]',
            help="defects of the embedded reference server (demos only)"),
        Key("quiet", "quiet", _flag, example="false", help="print only the verdict line"),
    )
}

# Keys people will try, and why the file refuses them.
REFUSED = {
    "password": "a password is never taken from a file of options; set SDDC_PASSWORD or use password-file",
    "targets": "a list of targets goes in its own file, given to `run --targets FILE`",
}

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def interpolate(text: str, where: str, environ: Mapping[str, str]) -> str:
    """Replace `${NAME}` with the environment variable; a missing one is an error naming it."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in environ:
            raise ConfigError(f"{where} uses ${{{name}}} but environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(replace, text)


def _interpolate_value(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, where, environ)
    if isinstance(value, list):
        return [_interpolate_value(v, where, environ) for v in value]
    return value


def validate_table(
    table: Mapping[str, Any],
    source: str,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    extra: Mapping[str, Converter] | None = None,
) -> dict[str, Any]:
    """Check every key and value of one table; return `{file key: converted value}`.

    `extra` admits keys beyond the `run` options (a fleet target's `name`).
    """
    env = os.environ if environ is None else environ
    known = {**{name: key.convert for name, key in KEYS.items()}, **(extra or {})}
    out: dict[str, Any] = {}
    for name, raw in table.items():
        if name in REFUSED:
            raise ConfigError(f"{source}: key '{name}' is not accepted: {REFUSED[name]}")
        if name not in known:
            close = difflib.get_close_matches(name.replace("_", "-"), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{name}'{hint}")
        value = _interpolate_value(raw, f"{source}: '{name}'", env)
        try:
            value = known[name](value)
        except BadValue as exc:
            raise ConfigError(f"{source}: '{name}' must be {exc}, got {_describe(raw)}") from None
        key = KEYS.get(name)
        if key is not None and key.path:
            value = str((base_dir / Path(value).expanduser()).resolve())
        out[name] = value
    return out


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    source: str  # how messages name it: "sddc-conformance.toml" or "pyproject.toml [tool.sddc-conformance]"
    values: dict[str, Any]  # file key -> converted value

    def default_map(self, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The values keyed by `run` parameter, for click's default_map."""
        env = os.environ if environ is None else environ
        mapping = {KEYS[name].param: value for name, value in self.values.items()}
        # Environment beats file: with SDDC_PASSWORD set, the file's password-file must not win
        # (cli._read_password prefers a password file over the variable).
        if env.get("SDDC_PASSWORD"):
            mapping.pop("password_file", None)
        return mapping


def read_toml(path: Path, source: str) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES} bytes")
    return loads_toml(raw, source)


def loads_toml(raw: bytes, source: str) -> dict[str, Any]:
    """TOML from bytes: not UTF-8, invalid or nested too deeply is a ConfigError (exit 2), never a traceback."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    # tomllib recurses on nested inline arrays/tables; the bracket depth is measured first.
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ConfigError(f"{source}: nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH}")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to parse") from None


def loads_json(raw: bytes, source: str) -> Any:
    """User JSON (a targets file): depth-bounded, UTF-8, one-line ConfigError otherwise."""
    decoded = decode_json(raw)
    if not decoded.ok:
        raise ConfigError(f"{source}: not valid JSON: {str(decoded.error).replace('the body', 'the file')}")
    return decoded.value


def load(path: Path, *, environ: Mapping[str, str] | None = None, display: str | None = None) -> LoadedConfig:
    """Load a named file: a pyproject.toml is read for its [tool.sddc-conformance] table."""
    is_pyproject = path.name == PYPROJECT
    shown = display or str(path)
    source = f"{shown} [tool.{PYPROJECT_SECTION}]" if is_pyproject else shown
    document = read_toml(path, shown)
    if is_pyproject:
        tool = document.get("tool", {})
        table = tool.get(PYPROJECT_SECTION, {}) if isinstance(tool, dict) else {}
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: must be a table")
        document = table
    return LoadedConfig(path, source, validate_table(document, source, base_dir=path.parent, environ=environ))


def discover(directory: Path) -> Path | None:
    """The config file of a directory: sddc-conformance.toml, else a pyproject.toml with our section."""
    candidate = directory / FILE_NAME
    if candidate.is_file():
        return candidate
    pyproject = directory / PYPROJECT
    if pyproject.is_file():
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
            # Someone else's broken pyproject.toml is not ours to report.
            return None
        tool = document.get("tool")
        if isinstance(tool, dict) and PYPROJECT_SECTION in tool:
            return pyproject
    return None


def load_for_run(explicit: str | None, *, cwd: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> LoadedConfig | None:
    """The file `run` should use: `--config FILE`, else the current directory's, else none."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return load(path, environ=environ)
    found = discover(cwd or Path.cwd())
    # Found in the current directory: messages name it as the user knows it, without a path.
    return load(found, environ=environ, display=found.name) if found is not None else None


def starter_text() -> str:
    """The commented file `sddc-conformance init` writes: every key, each with an example."""
    lines = [
        "# sddc-conformance.toml: options for `sddc-conformance run`, read from the current directory",
        "# (or name one with --config FILE). Keys are the run flags without their dashes.",
        "# Precedence: command line > environment (SDDC_TOKEN, SDDC_PASSWORD, SDDC_BASE_URL) > this file.",
        "# ${NAME} is replaced by environment variable NAME (an error if it is not set); $$ is a literal $.",
        "# A password never goes here: set SDDC_PASSWORD or point password-file at a file.",
        "",
    ]
    for key in KEYS.values():
        lines.append(f"# {key.help}")
        lines.append(f"# {key.name} = {key.example}")
        lines.append("")
    return "\n".join(lines)


def write_starter(path: Path, *, force: bool) -> Path:
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; use --force to overwrite it")
    path.write_text(starter_text(), encoding="utf-8")
    return path
