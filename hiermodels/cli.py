"""The ``hiermodels`` command."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

__all__ = ["main"]

#: Formula and method of each demo dataset.
DEMOS: dict[str, tuple[str, str, str]] = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "gaussian", "REML"),
    "tlc": ("lead ~ week + treatment + (1 | id)", "gaussian", "REML"),
    "classroom": (
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        "gaussian",
        "REML",
    ),
}


class CliError(Exception):
    """Bad input on the command line: printed as one message, exit code 2."""


def _demo(name: str) -> None:
    from hiermodels import Model, datasets

    if name not in DEMOS:
        raise CliError(f"unknown demo {name!r}; choose one of: {', '.join(DEMOS)}")
    formula, family, method = DEMOS[name]
    data = datasets.load(name)
    fit = Model(formula, data, family=family).fit_mle(method=method)
    print(fit.summary())
    print()
    print(f"fitted in {fit.opt.elapsed * 1000:.0f} ms ({fit.opt.evaluations} evaluations)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hiermodels`` command."""
    parser = argparse.ArgumentParser(
        prog="hiermodels", description="Mixed models: lme4-style MLEs, empirical and full Bayes."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit a shipped dataset and print the summary")
    demo.add_argument("dataset", nargs="?", default="sleepstudy", help=", ".join(DEMOS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                _demo(args.dataset)
    except (CliError, ValueError, FileNotFoundError, KeyError) as err:
        print(f"hiermodels: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
