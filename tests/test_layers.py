"""The package's layers: each subpackage imports only those below it, and no two modules
import each other, directly or round a circle. Every import counts, also one inside a
function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "imagenet_bench"

# Bottom to top. Subpackages on one line are peers: neither imports the other.
LAYERS: list[tuple[str, ...]] = [
    ("base",),  # errors, atomic writes, the 1000 classes
    ("datasets",),  # folders, test sets, class subsets, decoding, preprocessing
    ("outputs",),  # prediction files, manifests, output folders, downloads
    ("models", "scoring"),  # sources and registries | measures (per-image answers), score cache
    ("predict", "report"),  # the prediction runs | the table run, its column sets and renderings
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
SHIMS = {"keras_worker"}  # top-level modules kept for an old command line: they import anything
ENTRIES = {"corrupt"}  # ``python -m imagenet_bench.X`` commands: argparse only, like the scripts (any layer)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports (absolute names)."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("imagenet_bench"))
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("imagenet_bench"):
                continue
            for alias in node.names:  # ``from .x import y``: y may be a module of x
                candidate = f"{target}.{alias.name}"
                found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() else target)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LEVEL) else None


def test_every_module_is_in_a_layer():
    loose = [m for m in graph() if m.count(".") == 1 and layer(m) is None and m.split(".")[1] not in SHIMS | ENTRIES]
    assert loose == [], f"modules outside the layers {list(LEVEL)}: {loose}"
    assert set(LEVEL) == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


def test_imports_go_down_the_layers():
    wrong = []
    for module, deps in graph().items():
        mine = layer(module)
        if mine is None:
            continue
        for dep in deps:
            theirs = layer(dep)
            if theirs is not None and theirs != mine and LEVEL[theirs] >= LEVEL[mine]:
                wrong.append(
                    f"{module} -> {dep} ({mine} may import only {[n for n in LEVEL if LEVEL[n] < LEVEL[mine]]})"
                )
    assert wrong == [], "\n".join(wrong)


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle():
    circle = find_circle(graph())
    assert circle is None, " -> ".join(circle or [])


def test_the_circle_finder_finds_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_the_layer_check_sees_an_upward_import(tmp_path, monkeypatch):
    """A lower module importing a higher one, lazily, is found (so the test above could fail)."""
    fake = tmp_path / "imagenet_bench"
    for sub in ("base", "report"):
        (fake / sub).mkdir(parents=True)
        (fake / sub / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "report" / "table.py").write_text("")
    (fake / "base" / "errors.py").write_text("def f():\n    from ..report import table\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imports(fake / "base" / "errors.py") == {"imagenet_bench.report.table"}


@pytest.mark.parametrize(
    "script, banned",
    [
        ("imagenet_benchmarking", ("torch", "tensorflow", "keras", "timm", "PIL")),
        ("imagenet_keras_get_predictions", ("torch",)),
    ],
)
def test_scripts_import_only_what_they_need(script, banned):
    code = (
        f"import sys; sys.argv = ['x', '--help']\nimport {script}\n"
        f"bad = [m for m in {banned!r} if m in sys.modules]\nassert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


def test_paths_that_name_the_repository_still_do():
    """Modules one folder deeper than before: what names the repository (the Keras model
    process's PYTHONPATH, git's working folder, whose warnings are ours) must still be its root."""
    from imagenet_bench.base import errors
    from imagenet_bench.outputs import manifest
    from imagenet_bench.predict import keras_worker

    assert keras_worker.PROJECT_ROOT == manifest.PROJECT_ROOT == ROOT == Path(errors._PROJECT)


@pytest.mark.slow
def test_the_keras_script_runs_from_another_folder(tmp_path):
    """The model process finds the package wherever the script is started from."""
    from conftest import VAL500, WEIGHTS, run_script, shared

    weights = shared(WEIGHTS / "keras_mobilenet_alpha0.25_128.weights.h5")
    result = run_script(
        "imagenet_keras_get_predictions.py",
        shared(VAL500),
        "-m",
        "mobilenet_0.25_128",
        "--weights-file",
        f"mobilenet_0.25_128={weights}",
        "--limit",
        "4",
        "-o",
        tmp_path / "o",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "o" / "mobilenet_0.25_128_keras_imagenet_top5preds.npy").exists()
