"""Self-contained HTML pages: :class:`HtmlReport` and the cells and pictures it holds.

Headings, paragraphs, tables and figures (PNG, embedded as base64) are
collected into one HTML file that needs nothing else to be read; the
figures are also written beside it as PNG files.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiermodels.names import REPORT_FILENAME

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HtmlReport", "figure_png", "format_number"]


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
p.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; color: #555; padding-bottom: 0.3em; }
figure { margin: 0.8em 0 1.6em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; }
.note { background: #fff8e6; border-left: 4px solid #e0a30f; padding: 0.5em 0.9em; }
code { background: #f4f4f4; padding: 0 0.25em; }
"""


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def format_number(value: Any, digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits, but never fewer than one decimal.

    ``1527.5`` stays ``1527.5`` (not ``1528``), ``0.065551`` becomes
    ``0.06555``; booleans read ``yes`` or nothing, missing values nothing.
    """
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else ""
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "" if np.isnan(value) else ("∞" if value > 0 else "−∞")
        if abs(value) >= 10 ** (digits - 1):
            return f"{value:.1f}"
        return f"{value:.{digits}g}"
    return str(value)


@dataclass
class HtmlReport:
    """An HTML page built piece by piece.

    Attributes
    ----------
    title : str
        Page title and top heading.
    subtitle : str
        A line under the title.
    images : dict of str to bytes
        Every embedded figure by name, as PNG (also written as files).
    """

    title: str
    subtitle: str = ""
    images: dict[str, bytes] = field(default_factory=dict)
    _parts: list[str] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading."""
        self._parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, *, css: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def items(self, entries: list[str]) -> None:
        """A bulleted list of plain-text entries."""
        body = "".join(f"<li>{html.escape(e)}</li>" for e in entries)
        self._parts.append(f"<ul>{body}</ul>")

    def link(self, text: str, href: str, *, after: str = "", anchor: str | None = None) -> None:
        """A paragraph that is a link (``text``) followed by plain ``after``."""
        ident = f' id="{html.escape(anchor)}"' if anchor else ""
        self._parts.append(
            f'<p{ident}><a href="{html.escape(href)}">{html.escape(text)}</a>'
            f"{html.escape(after)}</p>"
        )

    def table(
        self, frame: pd.DataFrame, caption: str = "", *, digits: int = 4, index: bool = False
    ) -> None:
        """A table; floats to ``digits`` significant digits."""
        shown = frame.reset_index() if index else frame
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
        rows = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(format_number(v, digits))}</td>" for v in row)
            + "</tr>"
            for row in shown.itertuples(index=False)
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._parts.append(
            f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )

    def figure(self, name: str, png: bytes, caption: str) -> None:
        """An embedded PNG with its caption."""
        self.images[name] = png
        data = base64.b64encode(png).decode("ascii")
        self._parts.append(
            f'<figure id="{html.escape(name)}"><img alt="{html.escape(name)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>"
        )

    def render(self) -> str:
        """The whole page."""
        sub = f'<p class="lead">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        body = "\n".join(self._parts)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{sub}\n{body}\n</body></html>\n"
        )

    def write(self, directory: Path | str, filename: str = REPORT_FILENAME) -> Path:
        """Write the page (and each figure as a PNG file) into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, png in self.images.items():
            (out / f"{name}.png").write_bytes(png)
        path = out / filename
        path.write_text(self.render(), encoding="utf-8")
        return path
