"""``import hiermodels`` and ``hiermodels --help`` load no sampling or plotting engine.

PyMC, PyTensor, ArviZ, nutpie and matplotlib take seconds to import; the
package and the command's argument parsing must not pull them in. Each check
runs in a fresh interpreter, since this test process has long imported them.
The packages that export engines lazily (PEP 562) are checked to export the
same objects as their defining modules.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hiermodels

#: Top-level packages of the sampling and plotting engines.
ENGINES = frozenset(
    {
        "pymc",
        "pytensor",
        "arviz",
        "arviz_base",
        "arviz_stats",
        "arviz_plots",
        "nutpie",
        "bambi",
        "matplotlib",
    }
)
#: The package itself needs nothing compiled either.
BARE_IMPORT_FORBIDDEN = ENGINES | {"numba"}
LAZY_PACKAGES = ["hiermodels", "hiermodels.bayes", "hiermodels.plots"]
SOURCE_ROOT = Path(hiermodels.__file__).resolve().parents[1]


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter on the hiermodels under test, in a fresh process."""
    path = os.pathsep.join(filter(None, (str(SOURCE_ROOT), os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def _packages_loaded_by(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    report = "import json, sys\nprint(json.dumps([hiermodels.__file__, sorted(sys.modules)]))"
    done = _python("-c", f"{code}\nimport hiermodels\n{report}")
    source, modules = json.loads(done.stdout.splitlines()[-1])
    assert Path(source).resolve() == Path(hiermodels.__file__).resolve()
    return {name.partition(".")[0] for name in modules}


def test_import_loads_no_engine() -> None:
    loaded = _packages_loaded_by("import hiermodels")
    assert not loaded & BARE_IMPORT_FORBIDDEN, sorted(loaded & BARE_IMPORT_FORBIDDEN)
    assert "hiermodels" in loaded


@pytest.mark.parametrize("command", [[], ["fit"], ["demo"]], ids=["main", "fit", "demo"])
def test_help_loads_no_engine(command: list[str]) -> None:
    """``python -m hiermodels [COMMAND] --help``; -X importtime names every module imported."""
    done = _python("-X", "importtime", "-m", "hiermodels", *command, "--help")
    assert done.stdout.startswith(f"usage: {' '.join(['hiermodels', *command])}")
    imported = {
        line.rpartition("|")[2].strip().partition(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "hiermodels" in imported
    assert not imported & BARE_IMPORT_FORBIDDEN, sorted(imported & BARE_IMPORT_FORBIDDEN)


def test_maximum_likelihood_side_loads_no_engine() -> None:
    """The MLE and EB names, the datasets and the lazy packages themselves need no sampler."""
    loaded = _packages_loaded_by(
        "from hiermodels import (EBFit, Family, MixedFit, Model, ShrinkageComparison, anova,"
        " compare_shrinkage, datasets)\n"
        "import hiermodels.bayes, hiermodels.plots\n"
        "datasets.load('sleepstudy')"
    )
    assert not loaded & ENGINES, sorted(loaded & ENGINES)


def test_compound_loads_no_engine() -> None:
    loaded = _packages_loaded_by("import hiermodels.compound")
    assert not loaded & ENGINES, sorted(loaded & ENGINES)


def _declared_exports(package: ModuleType) -> dict[str, object]:
    """What the package's ``if TYPE_CHECKING:`` imports name, resolved by importing it."""
    tree = ast.parse(inspect.getsource(package))
    exports: dict[str, object] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        for statement in node.body:
            assert isinstance(statement, ast.ImportFrom) and statement.module is not None
            for alias in statement.names:
                if statement.module == package.__name__:
                    value = importlib.import_module(f"{statement.module}.{alias.name}")
                else:
                    value = getattr(importlib.import_module(statement.module), alias.name)
                exports[alias.asname or alias.name] = value
    return exports


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_exports_are_the_defining_modules_objects(name: str) -> None:
    package = importlib.import_module(name)
    declared = _declared_exports(package)
    assert sorted(declared) == sorted(package.__all__)
    for export, value in declared.items():
        assert getattr(package, export) is value, export
    assert set(package.__all__) <= set(dir(package))


@pytest.mark.parametrize("name", LAZY_PACKAGES)
def test_lazy_package_refuses_unknown_names(name: str) -> None:
    package = importlib.import_module(name)
    with pytest.raises(AttributeError, match=rf"module '{name}' has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_from_import_of_submodule_still_works() -> None:
    """An unexported submodule is imported by ``from package import submodule``, as before."""
    from hiermodels import errors
    from hiermodels.bayes import convergence

    assert errors.__name__ == "hiermodels.errors"
    assert convergence.__name__ == "hiermodels.bayes.convergence"


def _module_level_imports(root: Path) -> dict[str, set[str]]:
    """Which hiermodels modules each module imports at load time (not under TYPE_CHECKING)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hiermodels"):
                assert node.module is not None
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.append(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                targets += [a.name for a in node.names if a.name.startswith("hiermodels")]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (a path back to its start), or ``None``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_imports_itself_through_others() -> None:
    graph = _module_level_imports(Path(hiermodels.__file__).parent)
    assert len(graph) > 50
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
