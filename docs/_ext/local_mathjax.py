"""MathJax served from the built site: the pages typeset their math offline.

The MathJax files come from the Python package ``django-static-mathjax``
(MathJax 3, in the ``docs`` extra; it needs no Django to be read from), and
are copied into ``_static/mathjax/`` of every HTML build. The pages load
the ``tex-svg`` component, which draws glyphs as SVG paths and so needs no
web fonts. Its subfolders are copied with it: MathJax loads TeX extensions
(``\\boldsymbol``, ``\\cancel``) and the accessibility tools of its menu from
there on demand, relative to the component's own address.

``conf.py`` points ``mathjax_path`` at :data:`MATHJAX_PATH`. Sphinx is imported
only where it is used, so that ``docs/check_offline.py`` (and the tests
that import it) read these names without the docs extra.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.config import Config

#: The distribution that ships MathJax.
DISTRIBUTION = "django-static-mathjax"
#: MathJax's compiled components inside that distribution.
COMPONENTS = "mathjax/static/mathjax/es5"
#: The component the pages load: TeX input, SVG output, no web fonts.
COMPONENT = "tex-svg.js"
#: Where the copy goes, relative to the build's ``_static`` folder.
TARGET = "mathjax"
#: The value of ``mathjax_path``: relative paths are read against ``_static``.
MATHJAX_PATH = f"{TARGET}/{COMPONENT}"


def mathjax_source() -> Path:
    """The folder of MathJax's components in the installed distribution.

    Raises
    ------
    sphinx.errors.ConfigError
        When the distribution is not installed, or lacks the component.
    """
    from sphinx.errors import ConfigError

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise ConfigError(
            f"the documentation serves MathJax from the package "
            f"{DISTRIBUTION}, which is not installed; install the docs "
            f"extra: pip install -e '.[docs]'"
        ) from None
    source = Path(str(dist.locate_file(COMPONENTS)))
    if not (source / COMPONENT).is_file():
        raise ConfigError(
            f"{DISTRIBUTION} {dist.version} has no {COMPONENTS}/{COMPONENT}; "
            f"reinstall the docs extra: pip install -e '.[docs]'"
        )
    return source


def copy_mathjax(source: Path, static: Path) -> Path:
    """Copy the MathJax component and the folders it loads from into ``static``.

    The other combined components beside it (``tex-chtml.js``,
    ``mml-svg.js`` and so on) are left out: the pages never load them.

    Returns
    -------
    pathlib.Path
        The folder the copy is in, ``static / TARGET``.
    """
    target = static / TARGET
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / COMPONENT, target / COMPONENT)
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        shutil.copytree(folder, target / folder.name, dirs_exist_ok=True)
    return target


def _check_path(app: Sphinx, config: Config) -> None:
    """Fail early when MathJax is missing, or ``mathjax_path`` points elsewhere."""
    from sphinx.errors import ConfigError

    mathjax_source()
    if config.mathjax_path != MATHJAX_PATH:
        raise ConfigError(
            f"mathjax_path is {config.mathjax_path!r}, but the pages are "
            f"built to load the local copy; set mathjax_path = "
            f"{MATHJAX_PATH!r} in docs/conf.py"
        )


def _copy_into_build(app: Sphinx) -> None:
    # Copied before the pages are written, so that Sphinx finds the file
    # and adds its checksum to the script's address.
    if app.builder.format == "html":
        copy_mathjax(mathjax_source(), Path(app.outdir) / "_static")


def setup(app: Sphinx) -> dict[str, object]:
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _check_path)
    app.connect("builder-inited", _copy_into_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
