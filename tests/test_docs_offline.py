"""The documentation works offline: no page loads anything from another site.

The fast tests feed ``docs/check_offline.py`` (run by ``make docs`` after
Sphinx) small hand-written sites, each with one known fault or none. The
slow test builds the real documentation into a temporary folder, checks
it with that script, and opens pages in headless Chromium with every
request that is not a local file refused: MathJax, served from the build,
must typeset every equation without a TeX error. The ``explorer``
directive is built in a small project where ``hm.explore`` is a stand-in.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# One worker builds the docs once for both slow tests (the build also writes
# into docs/: two at once would race).
pytestmark = pytest.mark.xdist_group("docs-build")


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_offline = _load(DOCS / "check_offline.py")
local_mathjax = _load(DOCS / "_ext" / "local_mathjax.py")

MATH = '<span class="math notranslate nohighlight">\\(x\\)</span>'


def _site(tmp_path: Path, pages: dict[str, str], mathjax: bool = True) -> Path:
    """A minimal built site: ``index.html``, the given pages, and MathJax's entry file."""
    site = tmp_path / "html"
    for name, body in {"index.html": "<html></html>", **pages}.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(body, encoding="utf-8")
    if mathjax:
        entry = site / "_static" / local_mathjax.MATHJAX_PATH
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text("", encoding="utf-8")
    return site


def test_clean_site_passes_and_links_to_other_sites_are_allowed(tmp_path: Path):
    page = (
        '<link rel="canonical" href="https://example.org/page.html">'
        '<link rel="stylesheet" href="_static/theme.css?v=1">'
        '<script src="_static/doctools.js"></script>'
        '<a href="https://www.sphinx-doc.org/">Sphinx</a>'
        '<svg xmlns="http://www.w3.org/2000/svg"></svg>'
    )
    site = _site(tmp_path, {"page.html": page, "_static/theme.css": "a{}"})
    assert check_offline.site_problems(site) == []


@pytest.mark.parametrize(
    ("markup", "address"),
    [
        ('<script src="https://cdn.example.org/mathjax.js"></script>', "https://cdn"),
        ('<link rel="stylesheet" href="//fonts.example.org/a.css">', "//fonts"),
        ('<link href="http://x.example.org/a.css" rel="Preload">', "http://x"),
        ('<img src="https://img.example.org/a.png">', "https://img"),
        ('<iframe src="https://app.example.org/"></iframe>', "https://app"),
        ("<style>@import 'https://fonts.example.org/b.css';</style>", "https://fonts"),
        ('<div style="background: url(https://img.example.org/c.png)"></div>', "https://img"),
    ],
)
def test_page_loading_from_another_site_is_named(tmp_path: Path, markup: str, address: str):
    site = _site(tmp_path, {"guide/page.html": markup})
    problems = check_offline.site_problems(site)
    assert len(problems) == 1
    assert problems[0].startswith("guide/page.html: ")
    assert address in problems[0]


def test_stylesheet_importing_from_another_site_is_named(tmp_path: Path):
    css = (
        "@import url('https://fonts.example.org/css2?family=Lato');"
        "@font-face{src:url(../vendor/fa.woff2)}"
        "a{background:url(data:image/svg+xml;utf8,<svg/>)}"
    )
    site = _site(tmp_path, {"_static/styles/theme.css": css})
    assert check_offline.site_problems(site) == [
        "_static/styles/theme.css: loads https://fonts.example.org/css2?family=Lato"
    ]


def test_math_page_must_load_the_local_mathjax(tmp_path: Path):
    local = f'<script defer src="../_static/{local_mathjax.MATHJAX_PATH}?v=1"></script>'
    elsewhere = '<script defer src="../_static/other.js"></script>'
    site = _site(
        tmp_path,
        {"guide/good.html": MATH + local, "guide/bad.html": MATH + elsewhere},
    )
    assert check_offline.site_problems(site) == [
        f"guide/bad.html: has math but does not load _static/{local_mathjax.MATHJAX_PATH}"
    ]


def test_missing_mathjax_copy_is_named(tmp_path: Path):
    site = _site(tmp_path, {}, mathjax=False)
    problems = check_offline.site_problems(site)
    assert problems == [
        f"_static/{local_mathjax.MATHJAX_PATH}: missing (the pages load MathJax from it)"
    ]


def test_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    clean = _site(tmp_path / "clean", {})
    faulty = _site(tmp_path / "faulty", {"a.html": '<script src="https://x.org/a.js"></script>'})
    assert check_offline.main([str(clean)]) == 0
    assert capsys.readouterr().err == ""
    assert check_offline.main([str(faulty)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "a.html: <script> loads https://x.org/a.js"
    assert err[1].startswith("error: 1 external load(s)")
    assert check_offline.main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "no index.html: build the docs first" in err[0]


# -- The real build, in a browser ---------------------------------------------------------

#: TeX that needs extensions MathJax loads on demand from beside its component.
AUTOLOADED = r"\(\boldsymbol{\beta} + \cancel{u} + \bbox[2px]{x}\)"
#: The page's math after typesetting: elements left as TeX, TeX errors, and
#: TeX delimiters left in the text outside code blocks.
TYPESET_STATE = r"""() => {
    const maths = [...document.querySelectorAll('.math')];
    const text = document.body.cloneNode(true);
    text.querySelectorAll('pre, code, script, style').forEach(e => e.remove());
    return {
        maths: maths.length,
        typeset: document.querySelectorAll('.math mjx-container').length,
        raw: maths.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent),
        errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent),
        delimiters: text.textContent.match(/\\\(|\\\[|\$\$/g) || [],
    };
}"""


def _sphinx_build(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Build ``source`` into ``out`` as ``make docs`` does, documenting this tree."""
    command = [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html"]
    command += ["-d", str(out.parent / "doctrees"), str(source), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation of this tree, built as ``make docs`` builds it."""
    out = tmp_path_factory.mktemp("docs")
    done = _sphinx_build(DOCS, out / "html")
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "html"


@pytest.mark.slow
def test_built_pages_load_nothing_from_elsewhere(built_site: Path):
    assert check_offline.site_problems(built_site) == []
    source = local_mathjax.mathjax_source()
    copied = built_site / "_static" / local_mathjax.MATHJAX_PATH
    assert copied.read_bytes() == (source / local_mathjax.COMPONENT).read_bytes()
    page = (built_site / "user_guide" / "eb.html").read_text(encoding="utf-8")
    assert f'src="../_static/{local_mathjax.MATHJAX_PATH}?v=' in page
    assert not re.search(r"<script[^>]*src=\"https?:", page)


@pytest.mark.slow
def test_equations_are_typeset_with_the_network_refused(built_site: Path, browser: Any):
    from playwright.sync_api import Request, Route

    with_math = [
        html.relative_to(built_site).as_posix()
        for html in sorted(built_site.rglob("*.html"))
        if check_offline.MATH_CLASS in html.read_text(encoding="utf-8")
    ]
    assert {"user_guide/eb.html", "user_guide/mle.html"} <= set(with_math)
    probe = built_site / "probe.html"
    probe.write_text(
        f'<html><body><p class="{check_offline.MATH_CLASS}">{AUTOLOADED}</p>'
        f'<script defer src="_static/{local_mathjax.MATHJAX_PATH}"></script>'
        "</body></html>",
        encoding="utf-8",
    )
    refused: list[str] = []
    fetched: list[str] = []

    def refuse(route: Route) -> None:
        refused.append(route.request.url)
        route.abort()

    def record(request: Request) -> None:
        fetched.append(request.url)

    states = {}
    context = browser.new_context()
    try:
        context.route(re.compile(r"^(?!file:)"), refuse)
        page = context.new_page()
        page.on("request", record)
        for name in [*with_math, probe.name]:
            page.goto((built_site / name).as_uri())
            assert refused == [], f"{name} loads from elsewhere"
            page.wait_for_function("window.MathJax?.startup?.promise", timeout=60_000)
            page.evaluate("MathJax.startup.promise")
            states[name] = page.evaluate(TYPESET_STATE)
    finally:
        context.close()
    for name, state in states.items():
        assert state["maths"] > 0, f"{name}: no math found"
        assert state["typeset"] == state["maths"], f"{name}: {state['raw'][:3]} left as TeX"
        assert state["errors"] == [], f"{name}: TeX errors"
        assert state["delimiters"] == [], f"{name}: TeX delimiters left in the text"
    autoloaded = {
        Path(url).stem for url in fetched if "/_static/mathjax/input/tex/extensions/" in url
    }
    assert autoloaded >= {"boldsymbol", "cancel", "bbox"}


# -- The explorer directive, with a stand-in for hm.explore --------------------------------


@pytest.mark.slow
def test_case_studies_embed_their_explorers(built_site: Path):
    import hiermodels as hm

    explorers = built_site / "_static" / "explorers"
    compound = (built_site / "case_studies" / "05_compound_sampling.html").read_text("utf-8")
    radon = (built_site / "case_studies" / "06_radon.html").read_text("utf-8")
    embedded = r'<iframe class="hm-explorer" src="\.\./_static/explorers/([^"]+)"'
    sources = re.findall(embedded, compound) + re.findall(embedded, radon)
    assert len(sources) == 5
    pages = [(explorers / name).read_text(encoding="utf-8") for name in sources]
    # the simulator's page depends on nothing but its defaults: the directive wrote hm.explore's
    assert pages[3] == hm.explore("simulator").html
    assert "log_radon ~ floor + (1 | county)" in pages[4]


#: conf.py of a small project: ``hm.explore`` is replaced by a page that shows its source.
EXPLORER_CONF = """
import sys
sys.path.insert(0, {ext!r})
import hiermodels


class _Explored:
    def __init__(self, source):
        self.html = f"<html><body><p>explored {{source!r}}</p></body></html>"


hiermodels.explore = _Explored
extensions = ["explorer"]
"""


def _explorer_project(tmp_path: Path, pages: dict[str, str]) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text(EXPLORER_CONF.format(ext=str(DOCS / "_ext")), encoding="utf-8")
    for name, text in pages.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    return source


@pytest.mark.slow
def test_explorer_directive_writes_the_page_and_embeds_it(tmp_path: Path):
    directive = ".. explorer::\n   :height: 420\n\n   x = 40\n   x + {}\n"
    index = "Title\n=====\n\n" + directive.format(2) + "\n.. toctree::\n\n   guide/page\n"
    page = "Page\n====\n\n" + directive.format(3) + "\n" + directive.format(4)
    source = _explorer_project(tmp_path, {"index.rst": index, "guide/page.rst": page})
    done = _sphinx_build(source, tmp_path / "html")
    assert done.returncode == 0, done.stderr
    site = tmp_path / "html"
    written = {
        p.name: p.read_text(encoding="utf-8") for p in (site / "_static/explorers").iterdir()
    }
    assert written == {
        "index-1.html": "<html><body><p>explored 42</p></body></html>",
        "guide-page-1.html": "<html><body><p>explored 43</p></body></html>",
        "guide-page-2.html": "<html><body><p>explored 44</p></body></html>",
    }
    iframes = re.findall(
        r'<iframe class="hm-explorer" src="([^"]+)" width="100%" height="(\d+)"',
        (site / "guide" / "page.html").read_text(encoding="utf-8"),
    )
    assert iframes == [
        ("../_static/explorers/guide-page-1.html", "420"),
        ("../_static/explorers/guide-page-2.html", "420"),
    ]
    assert all((site / "guide" / src).is_file() for src, _ in iframes)


@pytest.mark.slow
def test_explorer_directive_needs_an_expression_last(tmp_path: Path):
    index = "Title\n=====\n\n.. explorer::\n\n   x = 40\n"
    source = _explorer_project(tmp_path, {"index.rst": index})
    done = _sphinx_build(source, tmp_path / "html")
    assert done.returncode != 0
    assert "the last line must be an expression: the source to explore" in done.stderr
