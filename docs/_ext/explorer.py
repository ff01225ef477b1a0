"""The ``explorer`` directive: a ``hiermodels.explorer`` page embedded in a page.

The directive's content is Python, run when the page is read, with
``hiermodels`` imported as ``hm``; its last line is an expression, the
source handed to ``hm.explore``. The explorer's page (one self-contained
HTML file) is written into the build's ``_static/explorers/`` and shown
in an ``<iframe>``::

    ```{explorer}
    :height: 640
    sleep = hm.datasets.load("sleepstudy")
    hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit()
    ```

``docs/check_offline.py`` reads the explorers' pages with the others, so
an explorer that loads a script from elsewhere fails the build too. Other
builders than HTML show nothing in its place.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.osutil import relative_uri
from sphinx.writers.html5 import HTML5Translator

#: Where the explorers' pages go, relative to the build's root.
FOLDER = "_static/explorers"


class explorer(nodes.General, nodes.Element):
    """An explorer's page (``html``), its file name and its height in pixels.

    Lower case, as docutils names its node classes: the name is the node's
    tag in doctree dumps.
    """


def _run(code: str) -> object:
    """Run ``code`` with ``hm`` bound; the value of its last line, an expression."""
    import hiermodels

    tree = ast.parse(code, mode="exec")
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        raise ValueError(
            "the last line must be an expression: the source to explore"
        )
    last = ast.Expression(tree.body.pop().value)
    namespace: dict[str, object] = {"hm": hiermodels}
    exec(compile(tree, "<explorer>", "exec"), namespace)
    return eval(compile(last, "<explorer>", "eval"), namespace)


class Explorer(SphinxDirective):
    """Run the content, explore its last value and embed the page."""

    has_content = True
    option_spec: ClassVar = {"height": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        import hiermodels

        try:
            html = hiermodels.explore(_run("\n".join(self.content))).html
        except Exception as error:
            raise self.error(
                f"explorer: {type(error).__name__}: {error}"
            ) from error
        serial = self.env.new_serialno("explorer")
        stem = re.sub(r"[^A-Za-z0-9]+", "-", self.env.docname).strip("-")
        node = explorer(
            html=html,
            filename=f"{stem}-{serial + 1}.html",
            height=self.options.get("height", 600),
        )
        return [node]


def _visit_html(self: HTML5Translator, node: explorer) -> None:
    target = Path(self.builder.outdir) / FOLDER / node["filename"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(node["html"], encoding="utf-8")
    page = self.builder.get_target_uri(self.builder.current_docname)
    src = relative_uri(page, f"{FOLDER}/{node['filename']}")
    self.body.append(
        f'<iframe class="hm-explorer" src="{src}" width="100%" '
        f'height="{node["height"]}" loading="lazy" style="border: 0"></iframe>\n'
    )
    raise nodes.SkipNode


def _skip(self: object, node: explorer) -> None:
    raise nodes.SkipNode


def setup(app: Sphinx) -> dict[str, object]:
    app.add_node(
        explorer,
        html=(_visit_html, None),
        latex=(_skip, None),
        text=(_skip, None),
        man=(_skip, None),
        texinfo=(_skip, None),
    )
    app.add_directive("explorer", Explorer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
