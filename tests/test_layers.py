"""The layers point down: worker-side code never imports the CLI/runner layer, and no package
imports another that imports it back (checked on the source, deferred imports included)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "components", "models", "kubeflow")
# What each package may import from the project; the command line (pipeline/cli.py and the
# *_commands.py modules) sits on top and knows every layer.
ALLOWED = {
    "models": set(),
    "components": {"models"},
    "kubeflow": {"components", "models"},
    "pipeline": {"components", "models", "kubeflow"},
}


def project_imports(path: Path):
    """(line, top-level project package) for every import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                yield node.lineno, top


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_the_layers_below(package):
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {top}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for line, top in project_imports(path)
             if top != package and top not in ALLOWED[package]]
    assert wrong == []


def test_the_allowed_graph_itself_has_no_cycle():
    def reaches(start, goal, seen=()):
        return any(dep == goal or (dep not in seen and reaches(dep, goal, seen + (dep,)))
                   for dep in ALLOWED[start])
    assert not any(reaches(package, package) for package in PACKAGES)


def test_the_checker_sees_deferred_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from pipeline.errors import UserError\n    import kubeflow.cli\n")
    assert list(project_imports(sample)) == [(2, "pipeline"), (3, "kubeflow")]
