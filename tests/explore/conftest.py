"""Explorer pages opened in the session's headless Chromium (``tests/conftest.py``),
with the network blocked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hiermodels.explorer import Explorer


@dataclass
class OpenPage:
    """A loaded explorer page, what it logged, and what it tried to fetch."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def value(self, selector: str) -> float:
        """The exact value behind a displayed number."""
        text = self.page.locator(selector).first.get_attribute("data-value")
        assert text not in (None, ""), f"{selector} shows no number"
        return float(text)

    def column(self, field_name: str, table: str = "#units-table") -> np.ndarray:
        cells = self.page.locator(f"{table} td[data-field='{field_name}']")
        return np.array(
            [
                float(v) if v else np.nan
                for v in cells.evaluate_all("c => c.map(x => x.dataset.value)")
            ]
        )

    def move(self, selector: str, position: float) -> None:
        """Move a range slider as a user does (the input event fires)."""
        self.page.locator(selector).fill(str(position))

    def curve_problems(self) -> list[str]:
        """Curves that leave their chart's plotting area or run along its edge.

        Every ``path.curve`` point must lie inside the chart's ``data-plot``
        box (left top right bottom). A drawn segment with both ends on one
        edge is a curve flattened against the axis instead of cut off there;
        only an edge at y = 0 (``data-y``, the y range), such as a density's
        axis, can be met by the curve itself.
        """
        return list(
            self.page.evaluate(
                """() => {
                 const out = [];
                 for (const chart of document.querySelectorAll('svg.chart')) {
                   const [l, t, r, b] = chart.dataset.plot.split(' ').map(Number);
                   const [ylo, yhi] = chart.dataset.y.split(' ').map(Number);
                   const edges = [[t, yhi], [b, ylo]].filter(([, v]) => v !== 0).map(([e]) => e);
                   for (const curve of chart.querySelectorAll('path.curve')) {
                     const d = curve.getAttribute('d') || '';
                     let last = null;
                     for (const [, cmd, xs, ys] of d.matchAll(/([ML])(-?[\\d.]+),(-?[\\d.]+)/g)) {
                       const x = +xs, y = +ys;
                       if (x < l - 0.01 || x > r + 0.01 || y < t - 0.01 || y > b + 0.01)
                         out.push(`${chart.id}: point ${x},${y} outside ${l} ${t} ${r} ${b}`);
                       if (cmd === 'L' && last) for (const edge of edges)
                         if (Math.abs(last[1] - edge) < 0.01 && Math.abs(y - edge) < 0.01
                             && Math.abs(x - last[0]) > 0.5)
                           out.push(`${chart.id}: segment along the edge y = ${edge}`);
                       last = [x, y];
                     }
                   }
                 }
                 return out;
               }"""
            )
        )

    def screenshot_check(self, path: Path) -> None:
        """The page is drawn: many colours in the screenshot, SVG marks of non-zero size."""
        self.page.screenshot(path=str(path), full_page=True)
        image = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
        colours = np.unique(image // 16, axis=0)
        assert len(colours) >= 12, f"only {len(colours)} colours: is the page blank?"
        drawn = self.page.evaluate(
            """() => [...document.querySelectorAll('svg.chart')].map(s => {
                 const marks = [...s.querySelectorAll('circle, path.curve, line.interval')];
                 return marks.filter(m => { const b = m.getBoundingClientRect();
                                            return b.width > 0 || b.height > 0; }).length; })"""
        )
        assert drawn and min(drawn) > 0, f"a chart is empty: marks per chart {drawn}"


@pytest.fixture
def open_page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    pages: list[Any] = []

    def load(explorer: Explorer) -> OpenPage:
        file = explorer.save(tmp_path / "page.html")
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        pages.append(page)
        opened = OpenPage(page)

        def route(r: Any) -> None:
            if r.request.url.startswith(("file://", "data:")):
                r.continue_()
            else:
                opened.blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on(
            "console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: opened.console_errors.append(str(e)))
        page.goto(file.resolve().as_uri())
        page.wait_for_function("() => window.hmExplorer !== undefined")
        return opened

    yield load
    for page in pages:
        page.close()
