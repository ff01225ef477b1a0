"""Packaging stays consistent: pyproject.toml, environment.yml, Makefile, CI, README."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from hiermodels import datasets

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"matplotlib": "matplotlib-base"}
# Conda-only entries that have no counterpart among the Python requirements.
CONDA_ONLY = {"python", "pip"}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _environment() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def _lower_bound(specifier: SpecifierSet) -> Version | None:
    """The version a ``>=`` clause demands, or ``None`` without one."""
    bounds = [Version(s.version) for s in specifier if s.operator == ">="]
    return max(bounds) if bounds else None


def _pip_requirements(lines: list[str]) -> dict[str, Version | None]:
    """Map conda-forge names to lower bounds for PEP 508 requirement strings."""
    result: dict[str, Version | None] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        result[CONDA_NAMES.get(name, name)] = _lower_bound(requirement.specifier)
    return result


def _conda_requirements(entries: list[Any]) -> dict[str, Version | None]:
    """Map names to lower bounds for conda match specs such as ``pymc>=6.4``."""
    result: dict[str, Version | None] = {}
    for entry in entries:
        if not isinstance(entry, str):  # the nested ``pip:`` list
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip())
        assert match is not None, f"cannot read conda spec {entry!r}"
        name, spec = match.groups()
        result[canonicalize_name(name)] = _lower_bound(SpecifierSet(spec.replace(" ", "")))
    return result


def _mismatches(pypi: dict[str, Version | None], conda: dict[str, Version | None]) -> list[str]:
    """Describe every dependency missing on one side or bounded differently."""
    problems = [f"{name} in pyproject.toml only" for name in sorted(pypi.keys() - conda.keys())]
    problems += [f"{name} in environment.yml only" for name in sorted(conda.keys() - pypi.keys())]
    for name in sorted(pypi.keys() & conda.keys()):
        if pypi[name] != conda[name]:
            problems.append(
                f"{name}: lower bound {pypi[name]} in pyproject.toml, {conda[name]} in "
                "environment.yml"
            )
    return problems


def _declared() -> tuple[dict[str, Version | None], dict[str, Version | None]]:
    project = _pyproject()["project"]
    pypi = _pip_requirements(project["dependencies"] + project["optional-dependencies"]["test"])
    conda = _conda_requirements(_environment()["dependencies"])
    return pypi, {k: v for k, v in conda.items() if k not in CONDA_ONLY}


def test_environment_matches_pyproject_dependencies() -> None:
    pypi, conda = _declared()
    assert _mismatches(pypi, conda) == []


def test_every_runtime_dependency_is_in_environment() -> None:
    runtime = _pip_requirements(_pyproject()["project"]["dependencies"])
    _, conda = _declared()
    assert runtime.keys() <= conda.keys()
    assert {"pymc", "arviz", "nutpie", "nlopt", "formulaic"} <= runtime.keys()


def test_mismatch_check_catches_a_dependency_on_one_side_only() -> None:
    pypi, conda = _declared()
    gained = {**pypi, "seaborn": Version("0.13")}
    assert _mismatches(gained, conda) == ["seaborn in pyproject.toml only"]
    assert _mismatches(pypi, {**conda, "seaborn": None}) == ["seaborn in environment.yml only"]
    lowered = {**conda, "pymc": Version("5.0")}
    assert _mismatches(pypi, lowered) == [
        "pymc: lower bound 6.4 in pyproject.toml, 5.0 in environment.yml"
    ]


def test_python_versions_agree() -> None:
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    conda = _conda_requirements(_environment()["dependencies"])
    assert _lower_bound(requires) == conda["python"] == Version("3.12")


def test_environment_installs_the_project() -> None:
    pip_entries = [e for e in _environment()["dependencies"] if isinstance(e, dict)]
    assert pip_entries == [{"pip": ["-e ."]}]


def test_console_script_resolves_to_a_function() -> None:
    target = _pyproject()["project"]["scripts"]["hiermodels"]
    assert target == "hiermodels.cli:main"
    module_name, _, attribute = target.partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_package_data_ships_every_dataset() -> None:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"]["hiermodels.datasets"]
    package_dir = ROOT / "hiermodels" / "datasets"
    shipped = {p.stem for pattern in patterns for p in package_dir.glob(pattern)}
    assert shipped == set(datasets.available())


def test_every_package_directory_has_an_init() -> None:
    # Package discovery skips namespace packages, so a folder of modules without
    # __init__.py would be left out of the wheel.
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["namespaces"] is False
    package_root = ROOT / "hiermodels"
    folders = {Path()} | {
        folder
        for module in package_root.rglob("*.py")
        for folder in module.relative_to(package_root).parents
    }
    missing = sorted(str(f) for f in folders if not (package_root / f / "__init__.py").exists())
    assert missing == []


def test_slow_marker_is_declared_and_deselected_by_make_test() -> None:
    markers = _pyproject()["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.startswith("slow:") for m in markers)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert test_recipe is not None
    assert '-m "not slow"' in test_recipe.group(1)
    assert "-n 2" in test_recipe.group(1)
    all_recipe = re.search(r"^test-all:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert all_recipe is not None
    assert "not slow" not in all_recipe.group(1)


def test_ci_runs_make_test() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[0] == "set -euo pipefail"
    assert commands[-1] == "make test"


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```[a-z]*\n(.*?)```", readme, re.DOTALL)
    assert first_block is not None
    assert first_block.group(1).strip().splitlines() == ["make demo", "make test"]
    assert readme.index("```") < 400, "the commands must come first"


@pytest.mark.parametrize("name", datasets.available())
def test_readme_lists_every_dataset(name: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| `{name}` |" in readme
