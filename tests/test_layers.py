"""The package's import layering: cli -> config/engine/report -> requirements -> model/outcome/errors.

Read from the code (AST), as `import_layers.py` does: imports under `if TYPE_CHECKING:` do not
count, imports inside functions do.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "conformance"

# Lower layers never import higher ones. `reference` (the mock) and `suite` (the shipped tests)
# sit beside the engine; pytest_plugin sits above the engine and below the CLI.
LAYER = {
    "errors": 0, "outcome": 0, "model": 0, "bodies": 0, "text": 0, "files": 0, "tasks": 0, "spec": 0, "threads": 0,
    "identity": 0,
    "options": 1, "contract": 1, "spec_diff": 1,
    "requirements": 2,
    "engine": 3, "report": 3, "config": 3, "reference": 3, "suite": 4,
    "pytest_plugin": 5,
    "cli": 6, "__main__": 7, "__init__": 0,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                head = ".".join(base + ([node.module] if node.module else []))
            else:
                head = node.module or ""
            targets = [head] + [f"{head}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target not in (name, "conformance"):
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    return LAYER[top]


def test_every_module_has_a_layer() -> None:
    unknown = sorted({m.split(".")[1] for m in _graph() if "." in m and m.split(".")[1] not in LAYER})
    assert not unknown, f"modules without a layer in this test: {unknown}"


def test_nothing_imports_the_cli() -> None:
    offenders = sorted(
        f"{m} imports {t}"
        for m, targets in _graph().items()
        for t in targets
        if (t == "conformance.cli" or t.startswith("conformance.cli."))
        and not (m.startswith("conformance.cli") or m == "conformance.__main__")
    )
    assert not offenders


def test_imports_go_downward_only() -> None:
    upward = sorted(
        f"{m} (layer {_layer(m)}) imports {t} (layer {_layer(t)})"
        for m, targets in _graph().items()
        for t in targets
        if _layer(t) > _layer(m)
    )
    assert not upward


def test_report_never_imports_the_checks() -> None:
    offenders = sorted(
        f"{m} imports {t}"
        for m, targets in _graph().items()
        if m.startswith("conformance.report")
        for t in targets
        if t.startswith(("conformance.requirements", "conformance.engine", "conformance.spec"))
    )
    assert not offenders


def test_no_import_circles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles


def test_a_planted_upward_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checks above can fail: a model module importing the engine is reported.
    fake = tmp_path / "conformance"
    for path in PACKAGE.rglob("*.py"):
        target = fake / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (fake / "model.py").write_text((fake / "model.py").read_text() + "\nfrom conformance.cli import main\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    with pytest.raises(AssertionError):
        test_nothing_imports_the_cli()
    with pytest.raises(AssertionError):
        test_imports_go_downward_only()


def test_the_pytest_plugin_loads_without_the_engine() -> None:
    code = (
        "import sys, conformance.pytest_plugin\n"
        "heavy = [m for m in ('requests', 'jsonschema', 'hypothesis', 'schemathesis', 'yaml', 'conformance.engine',"
        " 'conformance.requirements') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_importing_the_reports_loads_no_checks() -> None:
    code = (
        "import sys, conformance.report\n"
        "heavy = [m for m in ('jsonschema', 'hypothesis', 'schemathesis', 'yaml', 'conformance.requirements',"
        " 'conformance.engine') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
