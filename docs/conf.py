"""Sphinx configuration of the hiermodels documentation.

Build with ``make docs`` (``sphinx-build -W -b html docs docs/_build/html``):
warnings are errors. Pages are MyST markdown (read by myst-nb); the case
studies are the notebooks of ``case_studies/``, copied here at build time and
rendered with their stored outputs (they are not executed by the docs build).
"""

from __future__ import annotations

import ast
import filecmp
import importlib
import inspect
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

from local_mathjax import MATHJAX_PATH  # noqa: E402

import hiermodels  # noqa: E402

# -- Project -----------------------------------------------------------------------------

project = "hiermodels"
author = "hiermodels developers"
copyright = "hiermodels developers"
release = hiermodels.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "local_mathjax",
    "numpydoc",
    "sphinx_copybutton",
    "sphinx_design",
    "case_studies",
    "explorer",
]

exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "Thumbs.db",
    ".DS_Store",
]
templates_path = ["_templates"]

# -- MyST and notebooks ------------------------------------------------------------------

myst_enable_extensions = [
    "dollarmath",
    "amsmath",
    "colon_fence",
    "deflist",
    "substitution",
]
myst_heading_anchors = 3
# Notebooks are rendered with the outputs stored in them; the test suite runs them.
nb_execution_mode = "off"
nb_merge_streams = True
# myst-nb loads require.js and the ipywidgets renderer from a CDN for a
# notebook with stored widget state: none, for pages that work offline.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}

# -- Math ------------------------------------------------------------------------------------

# MathJax 3 from the build's own _static folder (docs/_ext/local_mathjax.py):
# every page works offline, and docs/check_offline.py fails the build when a
# page loads a script or stylesheet from elsewhere.
mathjax_path = MATHJAX_PATH
# MathJax 3's options: a glyph's SVG path is stored once per page and shared
# by every equation that uses it.
mathjax3_config = {"svg": {"fontCache": "global"}}

# -- HTML ---------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"hiermodels {release}"
html_static_path = ["_static"]
html_css_files = ["hiermodels.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "getting_started": []}
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# -- API reference -----------------------------------------------------------------------

autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_typehints = "none"  # the numpydoc docstrings carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"exclude-members": "__init__, __new__, __call__"}
numpydoc_show_class_members = (
    False  # members are documented by autodoc, not listed twice
)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False


def _listed_modules(page: Path) -> list[str]:
    """The modules an API page's autosummary blocks list, in order: one list, kept there."""
    modules, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```{eval-rst}"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and line.startswith("   hiermodels"):
            modules.append(line.strip())
    return modules


#: Modules with a page of their own in the API reference, as docs/api/index.md lists them.
API_MODULES = _listed_modules(DOCS / "api" / "index.md")


def _is_private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def _assignments(module: object) -> tuple[set[str], dict[str, str]]:
    """Names assigned at the top of a module, and names imported into it (name → module)."""
    tree = ast.parse(inspect.getsource(module))
    assigned: set[str] = set()
    imported: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            assigned.update(
                t.id for t in node.targets if isinstance(t, ast.Name)
            )
        elif isinstance(node, ast.AnnAssign) and isinstance(
            node.target, ast.Name
        ):
            assigned.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
    return assigned, imported


def _has_own_base(cls: type) -> bool:
    """Whether a class inherits methods from a hiermodels class (a mixin).

    Members inherited that way are documented with the class; members
    inherited from other libraries (``pandas.DataFrame``) are not.
    """
    bases = cls.__mro__[1:]
    return any(base.__module__.startswith("hiermodels") for base in bases)


def _relative(dotted: str, modname: str) -> str:
    """``dotted`` relative to the page's module when inside it (autosummary wants it so)."""
    return (
        dotted[len(modname) + 1 :]
        if dotted.startswith(f"{modname}.")
        else dotted
    )


def _api_members(modname: str) -> dict[str, list[str]]:
    """Split a module's ``__all__`` into what it defines and what it re-exports.

    A name is documented on the page of the module that defines it; a name
    defined in a private module (``hiermodels.compound._inputs``) belongs to
    the public package that exports it. Re-exports are listed by their
    defining module's dotted name, so the summary tables link to that page.
    """
    module = importlib.import_module(modname)
    names = getattr(
        module,
        "__all__",
        [n for n in vars(module) if not n.startswith("_")],
    )
    assigned, imported = _assignments(module)
    out: dict[str, list[str]] = {
        "classes": [],
        "exceptions": [],
        "functions": [],
        "data": [],
        "reexported": [],
        "inherits": [],
    }
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            home = obj.__module__
            if home != modname and not _is_private(home):
                dotted = f"{home}.{obj.__qualname__}"
                out["reexported"].append(_relative(dotted, modname))
            elif inspect.isfunction(obj):
                out["functions"].append(name)
            elif issubclass(obj, BaseException):
                out["exceptions"].append(name)
            else:
                out["classes"].append(name)
                if _has_own_base(obj):
                    out["inherits"].append(name)
        elif name in assigned or _is_private(imported.get(name, "_")):
            out["data"].append(name)
        else:
            dotted = f"{imported[name]}.{name}"
            out["reexported"].append(_relative(dotted, modname))
    return out


autosummary_context = {
    "api": {name: _api_members(name) for name in API_MODULES}
}

# -- Case studies --------------------------------------------------------------------------


def _copy_case_studies() -> None:
    """Mirror ``case_studies/*.ipynb`` into ``docs/case_studies/`` (git-ignored copies).

    Sphinx reads sources only from inside ``docs/``; the notebooks live at the
    project's root so that they can be run on their own. Unchanged files are
    not copied again (their timestamps decide what Sphinx rebuilds), and
    copies whose notebook has gone are removed.
    """
    source, target = ROOT / "case_studies", DOCS / "case_studies"
    notebooks = (
        {p.name: p for p in sorted(source.glob("*.ipynb"))}
        if source.is_dir()
        else {}
    )
    for stale in target.glob("*.ipynb"):
        if stale.name not in notebooks:
            stale.unlink()
    for name, path in notebooks.items():
        copy = target / name
        if not copy.exists() or not filecmp.cmp(path, copy, shallow=False):
            shutil.copy2(path, copy)


_copy_case_studies()


# -- Local fixes -----------------------------------------------------------------------------


def _callables_only(handler):
    """Wrap numpydoc's signature hook so that it leaves data objects alone.

    numpydoc reads a signature off every callable object, and a type alias
    such as ``hiermodels.compound.HyperPriorSpec`` (``tuple[str, Mapping]``)
    is callable; Sphinx then fails on a data object that is handed a
    signature ("error while formatting signature ... list assignment index
    out of range").
    """

    def hook(app, what, name, obj, options, signature, return_annotation):
        if what == "data":
            return None
        return handler(
            app, what, name, obj, options, signature, return_annotation
        )

    return hook


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _display_blocks_as_literal(app, what, name, obj, options, lines):
    """Show the indented display blocks of plain-text docstrings as literal blocks.

    The docstrings write formulas and small tables as an indented block after
    a blank line (``the deviance is`` / blank / ``    d(θ) = ...``), to be read
    in a terminal. reStructuredText would make such a block a block quote:
    its line breaks are lost and ``|L|`` or ``*`` in a formula are read as
    markup. Here the block becomes a literal block, shown as written. A block
    already introduced by ``::`` or belonging to a directive is left alone,
    and so is every indented line that follows its parent line without a
    blank line (parameter descriptions, list continuations).
    """
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or i < 2 or lines[i - 1].strip():
            i += 1
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        parent = lines[j] if j >= 0 else ""
        if j < 0 or _indent(line) <= _indent(parent):
            i += 1
            continue
        text = parent.strip()
        if (
            text.endswith("::")
            or text.startswith(".. ")
            or text.startswith(":")
        ):
            i += 1
            continue
        if text.endswith(":"):
            lines[j] = parent + ":"
        else:
            lines[i:i] = [" " * _indent(parent) + "::", ""]
            i += 2
        depth = _indent(lines[i])
        while i < len(lines) and (
            not lines[i].strip() or _indent(lines[i]) >= depth
        ):
            i += 1
    return None


def _import_object(dotted: str) -> object | None:
    """The object a dotted name refers to, or ``None``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _link_reexports(app, env, node, contnode):
    """Resolve references to re-exported names where those names are documented.

    Docstrings refer to objects by the names users import them by
    (``hiermodels.compare_shrinkage``, ``NormalNormal`` inside
    ``hiermodels.compound``); the reference pages document each object once,
    in the module that defines it (or, for a private module, in the package
    that exports it). Unresolved Python references are retried there.
    """
    if node.get("refdomain") != "py" or not node.get("reftarget"):
        return None
    target = node["reftarget"].lstrip("~.")
    scopes = [node.get("py:class"), node.get("py:module")]
    candidates = [f"{scope}.{target}" for scope in scopes if scope] + [
        target
    ]
    domain = env.get_domain("py")
    for name in candidates:
        obj = _import_object(name)
        home, qualname = (
            getattr(obj, "__module__", None),
            getattr(obj, "__qualname__", None),
        )
        if not (
            isinstance(home, str)
            and home.startswith("hiermodels")
            and qualname
        ):
            continue
        if _is_private(home):
            parts = home.split(".")
            home = ".".join(
                parts[
                    : next(
                        i for i, p in enumerate(parts) if p.startswith("_")
                    )
                ]
            )
        canonical = f"{home}.{qualname}"
        if canonical == name:
            continue
        found = domain.resolve_xref(
            env,
            node["refdoc"],
            app.builder,
            node["reftype"],
            canonical,
            node,
            contnode,
        )
        if found is not None:
            return found
    return None


def setup(app):
    app.connect(
        "autodoc-process-docstring",
        _display_blocks_as_literal,
        priority=400,
    )
    app.connect("missing-reference", _link_reexports)

    from numpydoc.numpydoc import mangle_signature

    for listener in list(app.events.listeners["autodoc-process-signature"]):
        if listener.handler is mangle_signature:
            app.disconnect(listener.id)
            app.connect(
                "autodoc-process-signature",
                _callables_only(mangle_signature),
                priority=listener.priority,
            )
