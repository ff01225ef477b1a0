"""The :class:`Explorer` value: one self-contained HTML page built from a payload.

The page's script and styles live beside this module (``static/``) and are
inlined, with the payload as JSON, so the file opens from disk with no
network access and displays inline in Jupyter.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["Explorer", "json_ready"]


def json_ready(value: Any) -> Any:
    """Turn numpy values and non-finite floats into plain JSON values.

    Parameters
    ----------
    value : object
        Nested mappings, sequences, numpy arrays and scalars.

    Returns
    -------
    object
        The same structure with lists, floats, ints and strings; NaN and
        infinities become ``None`` (JSON has no spelling for them).
    """
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot put a {type(value).__name__} on the page")


def _static(name: str) -> str:
    return resources.files("hiermodels.explorer").joinpath("static", name).read_text("utf-8")


@dataclass(frozen=True)
class Explorer:
    """An interactive page: sliders over a model's hyperparameters.

    Build it with :func:`hiermodels.explorer`.

    Attributes
    ----------
    kind : {"normal", "beta_binomial", "mixed", "simulator"}
        Which explorer the page shows.
    title : str
        Heading and ``<title>`` of the page.
    payload : mapping
        The data and precomputed numbers the page's script reads (JSON-ready).
    """

    kind: str
    title: str
    payload: Mapping[str, Any]

    @property
    def html(self) -> str:
        """The whole page: scripts, styles and data inline, no network reference."""
        data = json.dumps(
            json_ready({"kind": self.kind, "title": self.title, **self.payload}),
            allow_nan=False,
            separators=(",", ":"),
        )
        # "</" inside a script element would end it early.
        data = data.replace("</", "<\\/")
        return (
            "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<title>{html.escape(self.title)}</title>\n"
            f"<style>\n{_static('explore.css')}</style>\n</head>\n<body>\n"
            f"<main id='hm-explorer' data-kind='{self.kind}'></main>\n"
            f"<script type='application/json' id='hm-data'>{data}</script>\n"
            f"<script>\n{_static('explore.js')}</script>\n</body>\n</html>\n"
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path``.

        Parameters
        ----------
        path : str or pathlib.Path
            File to write (UTF-8); a missing ``.html`` suffix is not added.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        target = Path(path)
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a folder; give a file name such as page.html")
        target.write_text(self.html, encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        """The page inside an iframe (``srcdoc``), so its script runs in a notebook."""
        return (
            f"<iframe srcdoc='{html.escape(self.html, quote=True)}' "
            "style='width:100%;height:900px;border:1px solid #ddd' "
            f"title='{html.escape(self.title, quote=True)}'></iframe>"
        )
