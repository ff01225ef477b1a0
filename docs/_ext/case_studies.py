"""The ``case-studies`` directive: the case-study notebooks as a toctree.

A glob toctree (``:glob:`` with pattern ``*``) that stays quiet while the
pattern matches no document: Sphinx warns about an empty glob, and the docs
are built with warnings as errors, so until the first notebook exists the
directive renders the paragraph given as ``:empty:`` instead.
"""

from __future__ import annotations

from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.util import docname_join
from sphinx.util.matching import patfilter


class CaseStudies(TocTree):
    """``toctree`` with ``:glob:`` always on and an ``:empty:`` text for no matches."""

    option_spec: ClassVar = {
        **TocTree.option_spec,
        "empty": directives.unchanged,
    }

    def run(self) -> list[nodes.Node]:
        here = self.env.docname
        others = set(self.env.found_docs) - {here}
        patterns = [
            entry.strip() for entry in self.content if entry.strip()
        ]
        if any(patfilter(others, docname_join(here, p)) for p in patterns):
            self.options["glob"] = True
            return super().run()
        text = self.options.get("empty", "")
        return [nodes.paragraph(text, text)] if text else []


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("case-studies", CaseStudies)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
