"""Check that the built documentation loads nothing from other sites.

Every HTML page of the build is read; a page fails when it loads a script,
a stylesheet, a font, an image or a frame from an absolute address
(``https://``, ``http://`` or ``//``), and a stylesheet of the build fails
when it imports or refers to one (``@import``, ``url(...)``). Hyperlinks to
other sites (``<a href="https://...">``) are what they should be, and pass.
The check also asks that the MathJax component the pages load is in the
build and that every page with math refers to it.

Usage (from the project's root; ``make docs`` runs it after Sphinx)::

    .venv/bin/python docs/check_offline.py docs/_build/html

It prints one line per problem, ``page: what``, and exits 1 when there is
any; 2 when the folder is not a built site.
"""

from __future__ import annotations

import argparse
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

from local_mathjax import MATHJAX_PATH

#: An address that leaves the site: a scheme, or the scheme-relative ``//``.
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
#: Values of ``<link rel>`` that make the browser fetch the address.
FETCHING_RELS = frozenset(
    {
        "stylesheet",
        "preload",
        "modulepreload",
        "prefetch",
        "icon",
        "manifest",
    }
)
#: Elements whose ``src`` the browser fetches while showing the page.
SRC_ELEMENTS = frozenset(
    {
        "script",
        "img",
        "iframe",
        "frame",
        "embed",
        "source",
        "audio",
        "video",
        "track",
        "input",
    }
)
#: Addresses a stylesheet loads: ``url(...)`` and ``@import "..."``.
CSS_ADDRESS = re.compile(
    r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE
)
#: The mark Sphinx puts on math for MathJax to typeset.
MATH_CLASS = "math notranslate nohighlight"


class _PageLoads(HTMLParser):
    """The addresses a page fetches when shown, and the scripts it loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.scripts: list[str] = []
        self.has_math = False
        self._in_style = False

    def handle_starttag(
        self, tag: str, attrs: list[tuple[str, str | None]]
    ) -> None:
        values = {name: value or "" for name, value in attrs}
        if MATH_CLASS in values.get("class", ""):
            self.has_math = True
        if tag == "script" and "src" in values:
            self.scripts.append(values["src"])
        addresses = []
        if tag in SRC_ELEMENTS:
            addresses += [
                values.get("src", ""),
                *_srcset(values.get("srcset", "")),
            ]
        if tag == "link" and FETCHING_RELS & set(
            values.get("rel", "").lower().split()
        ):
            addresses.append(values.get("href", ""))
        if tag == "object":
            addresses.append(values.get("data", ""))
        if tag == "video":
            addresses.append(values.get("poster", ""))
        addresses += _css_addresses(values.get("style", ""))
        self.external += [
            f"<{tag}> loads {address}"
            for address in addresses
            if EXTERNAL.match(address)
        ]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.external += [
                f"<style> loads {address}"
                for address in _css_addresses(data)
                if EXTERNAL.match(address)
            ]


def _srcset(value: str) -> list[str]:
    """The addresses of a ``srcset`` (each candidate is ``address [width]``)."""
    return [part.split()[0] for part in value.split(",") if part.strip()]


def _css_addresses(css: str) -> list[str]:
    return [url or imported for url, imported in CSS_ADDRESS.findall(css)]


def page_problems(page: Path, site: Path) -> list[str]:
    """What one built page loads from elsewhere, and a missing MathJax reference.

    Parameters
    ----------
    page
        An HTML file of the build.
    site
        The build's root folder (where ``_static`` is).

    Returns
    -------
    list of str
        One message per problem; empty when the page is self-contained.
    """
    loads = _PageLoads()
    loads.feed(page.read_text(encoding="utf-8"))
    problems = list(loads.external)
    if loads.has_math:
        local = (site / "_static" / MATHJAX_PATH).resolve()
        referred = {
            (page.parent / src.split("?")[0]).resolve()
            for src in loads.scripts
            if not EXTERNAL.match(src)
        }
        if local not in referred:
            problems.append(
                f"has math but does not load _static/{MATHJAX_PATH}"
            )
    return problems


def stylesheet_problems(stylesheet: Path) -> list[str]:
    """The addresses outside the site that a stylesheet of the build loads."""
    css = stylesheet.read_text(encoding="utf-8", errors="replace")
    return [
        f"loads {address}"
        for address in _css_addresses(css)
        if EXTERNAL.match(address)
    ]


def site_problems(site: Path) -> list[str]:
    """Every problem of a built site, each as ``path: what``.

    Raises
    ------
    FileNotFoundError
        When ``site`` has no ``index.html`` (it is not a built site).
    """
    if not (site / "index.html").is_file():
        raise FileNotFoundError(
            f"{site} has no index.html: build the docs first (make docs)"
        )
    problems = []
    if not (site / "_static" / MATHJAX_PATH).is_file():
        problems.append(
            f"_static/{MATHJAX_PATH}: missing (the pages load MathJax from it)"
        )
    for page in sorted(site.rglob("*.html")):
        name = page.relative_to(site).as_posix()
        problems += [
            f"{name}: {what}" for what in page_problems(page, site)
        ]
    for stylesheet in sorted(site.rglob("*.css")):
        name = stylesheet.relative_to(site).as_posix()
        problems += [
            f"{name}: {what}" for what in stylesheet_problems(stylesheet)
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fail when a built page loads a script or stylesheet from another site."
    )
    parser.add_argument(
        "site",
        type=Path,
        help="the built HTML folder, e.g. docs/_build/html",
    )
    args = parser.parse_args(argv)
    try:
        problems = site_problems(args.site)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            f"error: {len(problems)} external load(s) in {args.site}; "
            "the documentation must work offline",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
