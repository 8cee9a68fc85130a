"""The layout's promises: one import root, no path tricks, no import cycles, a plain Lambda."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"function", "infra", "local", "bench", "runbook_lib", "tests"}
# What function/ may import besides itself: it ships to Lambda as it is.
LAMBDA_RUNTIME = {"boto3", "botocore"}
# The two tricks the layout replaces, spelt in halves so this file does not hold them itself.
PATH_TRICKS = ("sys." + "path", "spec_from_" + "file_location")


def _python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[:2] == ["notebooks", "runbook_lib"]:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """Project modules ``path`` imports at module level (TYPE_CHECKING blocks included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _project_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports, for every module of the shipped packages."""
    files = {_module_name(path): path for path in _python_files()}
    files = {name: path for name, path in files.items() if name.partition(".")[0] in PACKAGES}
    return {
        module: {name for name in _imports(path, module) if name in files and name != module}
        for module, path in files.items()
    }


def test_no_file_edits_the_import_path_or_loads_a_module_from_a_file():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _python_files()
        if any(trick in path.read_text() for trick in PATH_TRICKS)
    ]
    assert offenders == []


def test_no_two_project_modules_import_each_other():
    graph = _project_graph()
    assert "local.stack" in graph and "local.listener" in graph["local.stack"]
    pairs = sorted(
        (a, b) for a, targets in graph.items() for b in targets if a < b and a in graph.get(b, ())
    )
    assert pairs == []


def test_the_lambda_package_imports_only_itself_the_standard_library_and_boto3():
    outside: set[str] = set()
    for path in (ROOT / "function").glob("*.py"):
        for name in _imports(path, _module_name(path)):
            top = name.partition(".")[0]
            if top != "function" and top not in LAMBDA_RUNTIME:
                outside.add(top)
    assert outside <= set(sys.stdlib_module_names), outside - set(sys.stdlib_module_names)


def test_the_project_imports_from_anywhere_by_package_name(tmp_path):
    # A fresh interpreter started elsewhere: the editable install alone makes the names resolve.
    code = "import function.handler, infra.site, local.stack, runbook_lib, bench.baseline"
    result = subprocess.run(  # noqa: S603 (our own interpreter, a fixed program)
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
