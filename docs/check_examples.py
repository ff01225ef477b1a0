"""Run the code of the documentation pages and compare what it prints.

Every fenced ``python`` block of a page runs, in page order, in one namespace
per page. When a ``python`` block is followed directly by a ``text`` block,
that block is what the code prints and must match it exactly (trailing
spaces aside); a ``none`` block shows output that depends on the machine
(MCMC draws, timings) and is not compared. ``{code-block}`` directives are
shown, never run.

Usage (from the project's root)::

    .venv/bin/python docs/check_examples.py                 # every page
    .venv/bin/python docs/check_examples.py docs/user_guide/formulas.md
    .venv/bin/python docs/check_examples.py --show PAGE     # print the outputs
    .venv/bin/python docs/check_examples.py --save-figures PAGE

Figures a block draws are closed after it; with ``--save-figures`` they are
first written to ``docs/_static/figures/<page>-<n>.png`` (``n`` counting the
page's figures from 1), the files the pages show.

The pages with full-Bayes fits take a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re
import sys
import time
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
FENCE = re.compile(r"^(`{3,})(\S*)(.*)$")


def blocks(text: str) -> list[tuple[str, str, int, bool]]:
    """Every top-level fenced block: language, body, line, and whether only blank
    lines separate it from the block before."""
    out: list[tuple[str, str, int, bool]] = []
    lines = text.splitlines()
    i, last_end = 0, -2
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        ticks, lang, start = match.group(1), match.group(2), i
        adjacent = last_end >= 0 and all(
            not x.strip() for x in lines[last_end + 1 : start]
        )
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != ticks:
            body.append(lines[i])
            i += 1
        out.append((lang, "\n".join(body), start + 1, adjacent))
        last_end = i
        i += 1
    return out


def _normal(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def check_page(
    path: Path, show: bool = False, save_figures: bool = False
) -> int:
    """Run one page; return the number of failures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    # each page starts from the same display options, whatever an earlier page set
    pd.reset_option("display")
    pd.set_option("display.width", 120)
    pd.set_option("display.max_columns", 30)
    failures = 0
    figures = 0
    namespace: dict[str, object] = {"__name__": "__docs__"}
    found = blocks(path.read_text())
    for k, (lang, body, line, _) in enumerate(found):
        if lang != "python":
            continue
        expected = found[k + 1] if k + 1 < len(found) else None
        buffer = io.StringIO()
        started = time.perf_counter()
        try:
            with (
                contextlib.redirect_stdout(buffer),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                exec(
                    compile(body, f"{path.name}:{line}", "exec"), namespace
                )
        except Exception as exc:  # report and go on with the page
            print(f"FAIL {path.name}:{line}: {type(exc).__name__}: {exc}")
            failures += 1
            continue
        took = time.perf_counter() - started
        for number in plt.get_fignums():
            figures += 1
            if save_figures:
                target = (
                    DOCS
                    / "_static"
                    / "figures"
                    / f"{path.stem}-{figures}.png"
                )
                target.parent.mkdir(parents=True, exist_ok=True)
                plt.figure(number).savefig(
                    target, dpi=100, bbox_inches="tight"
                )
            plt.close(number)
        printed = buffer.getvalue()
        if show:
            print(f"--- {path.name}:{line} ({took:.1f} s)\n{printed}")
        if expected is not None and expected[0] == "text" and expected[3]:
            if _normal(printed) != _normal(expected[1]):
                failures += 1
                print(f"FAIL {path.name}:{line}: output differs")
                diff = difflib.unified_diff(
                    _normal(expected[1]),
                    _normal(printed),
                    "page",
                    "run",
                    lineterm="",
                )
                print("\n".join(diff))
    print(f"{'ok  ' if not failures else 'FAIL'} {path.relative_to(DOCS)}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument(
        "--show", action="store_true", help="print what every block prints"
    )
    parser.add_argument(
        "--save-figures",
        action="store_true",
        help="write the figures drawn",
    )
    args = parser.parse_args(argv)
    pages = args.pages or sorted(DOCS.glob("*.md")) + sorted(
        DOCS.glob("user_guide/*.md")
    )
    failures = sum(
        check_page(page.resolve(), args.show, args.save_figures)
        for page in pages
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
