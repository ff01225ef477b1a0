"""The ``hiermodels explore`` subcommand: write one explorer page.

``hiermodels explore SOURCE [-o FILE]``: SOURCE is a shipped teaching
dataset (``efron_morris_1970``/``baseball``, ``eight_schools``,
``rats_tumors``), ``simulator``, or a CSV file with columns ``y`` and ``se``;
with ``--formula`` (and ``--family``) it is any shipped dataset or CSV file,
and the page explores the one-factor linear mixed model fitted to it.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from hiermodels import errors

__all__ = ["add_explore_parser", "run_explore"]


def add_explore_parser(sub: Any) -> None:
    """Register ``explore`` on the ``hiermodels`` command's subparsers.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The command's subparsers.
    """
    parser = sub.add_parser(
        "explore", help="write an interactive shrinkage explorer (one self-contained HTML page)"
    )
    parser.add_argument(
        "source",
        help="efron_morris_1970 (baseball), eight_schools, rats_tumors, simulator, a CSV file "
        "with columns y and se, or with --formula any shipped dataset or CSV file",
    )
    parser.add_argument("-o", "--output", help="HTML file to write (default explore-SOURCE.html)")
    parser.add_argument(
        "--formula", help='one-factor mixed model to fit and explore, e.g. "y ~ x + (x | g)"'
    )
    parser.add_argument("--family", default="gaussian", help="gaussian (default)")
    parser.add_argument("--title", help="heading of the page")


def _source(args: argparse.Namespace) -> tuple[Any, str]:
    """What to explore, and the stem of the default file name."""
    import pandas as pd

    from hiermodels import datasets
    from hiermodels.cli import _model, _read_csv
    from hiermodels.explorer import COMPOUND_DATASETS

    name = args.source
    is_file = name.lower().endswith(".csv") or Path(name).exists()
    stem = Path(name).stem if is_file else name.lower()
    if args.formula is None:
        if args.family != "gaussian":
            raise errors.CliError("--family applies with --formula (a mixed model to fit)")
        if is_file:
            return _read_csv(name), stem
        if name.lower() in (*COMPOUND_DATASETS, "simulator"):
            return name, stem
        if name.lower() in datasets.available():
            raise errors.CliError(
                f"{name} is a mixed-model dataset: give --formula, e.g. "
                f'hiermodels explore {name} --formula "y ~ x + (1 | g)"'
            )
        raise errors.CliError(
            f"no such file or dataset: {name}; give a CSV file with columns y and se, "
            f"simulator, or one of {', '.join(COMPOUND_DATASETS)}"
        )
    if is_file:
        data = _read_csv(name)
    elif name.lower() in datasets.available():
        data = datasets.load(name)
    else:
        raise errors.CliError(f"no such file or dataset: {name}")
    assert isinstance(data, pd.DataFrame)
    model = _model(args.formula, data, args.family)
    if not model.family.is_gaussian:
        raise errors.CliError(
            f"--family {args.family}: the mixed-model explorer needs a linear mixed model "
            "(--family gaussian)"
        )
    if len(model.design.blocks) != 1:
        groups = ", ".join(block.group for block in model.design.blocks)
        raise errors.CliError(
            f"the formula has {len(model.design.blocks)} random-effect terms ({groups}); "
            "the explorer shows one grouping factor: use a single (terms | group) term"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit is shown on the page (c = 1 at the edge)
        return model.fit_mle(), stem


def run_explore(args: argparse.Namespace) -> None:
    """Write the page named by ``args`` and print its path.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``explore`` arguments.
    """
    from hiermodels.explorer import explore

    out = Path(args.output or f"explore-{_source_stem(args.source)}.html")
    if out.is_dir():
        raise errors.CliError(f"--output {out} is a folder; give a file name such as page.html")
    if not out.parent.exists():
        raise errors.CliError(f"--output {out}: the folder {out.parent} does not exist")
    source, _ = _source(args)
    try:
        page = explore(source, title=args.title)
    except (TypeError, ValueError) as err:
        raise errors.CliError(str(err).splitlines()[0]) from None
    print(page.save(out))


def _source_stem(name: str) -> str:
    return Path(name).stem if name.lower().endswith(".csv") else name.lower()
