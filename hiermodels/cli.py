"""The ``hiermodels`` command.

``hiermodels fit DATA.csv "FORMULA"`` fits a mixed model from a CSV file by
marginal maximum likelihood, empirical Bayes and/or full Bayes, prints an
lme4-style summary and writes tables (CSV), the posterior (NetCDF), the
pictures and an HTML report, ``report.html``. ``hiermodels demo NAME`` does
all of it on a shipped dataset and writes the report to
``./hiermodels-report/report.html``. Bad input
gives one line on stderr and exit code 2; warnings are one ``warning: …``
line each. Rows of a CSV file are numbered as in a spreadsheet (the header is
row 1, the first data row is row 2), so messages point at the cell to fix.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hiermodels import errors
from hiermodels._lazy import moved_names
from hiermodels.analysis import ANALYSIS_METHODS, run_analysis
from hiermodels.console import (
    Steps,
    first_line,
    in_command_line_terms,
    print_summary,
    rich_table,
    show_warning,
    write_outputs,
)
from hiermodels.explorer.cli import add_explore_parser, run_explore
from hiermodels.names import DEFAULT_CI_PROB, EXPLORER_FILENAME, REPORT_FILENAME

if TYPE_CHECKING:
    import pandas as pd

    from hiermodels.model import Model

__all__ = ["DEMOS", "build_parser", "main"]

#: Formula and family of each mixed-model demo.
DEMOS: dict[str, tuple[str, str]] = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "gaussian"),
    "tlc": ("lead ~ week + treatment + (1 | id)", "gaussian"),
    "classroom": (
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        "gaussian",
    ),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
}
DEMO_NAMES = (*DEMOS, "baseball")

#: Names that moved out of this module -> (module, name) they live in now.
_MOVED: dict[str, tuple[str, str]] = {
    "CliError": ("hiermodels.errors", "CliError"),
    "print_warnings": ("hiermodels.console", "print_warnings"),
}


__getattr__ = moved_names(__name__, _MOVED)


# -------------------------------------------------------------------- input


def _read_csv(path: str) -> pd.DataFrame:
    import pandas as pd

    file = Path(path)
    if not file.exists():
        raise errors.CliError(f"no such file: {path}")
    if file.is_dir():
        raise errors.CliError(f"{path} is a directory, not a CSV file")
    try:
        data = pd.read_csv(file)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0]
        raise errors.CliError(f"cannot read {path} as CSV: {first}") from None
    except OSError as err:
        raise errors.CliError(f"cannot read {path}: {err.strerror or err}") from None
    if data.empty:
        raise errors.CliError(f"{path} has a header but no rows")
    # row labels as a spreadsheet shows them: the header is row 1
    data.index = pd.RangeIndex(2, len(data) + 2)
    return data


def _model(formula: str, data: pd.DataFrame, family: str, weights: str | None = None) -> Model:
    from hiermodels import Model

    try:
        model = Model(formula, data, family=family, weights=weights)
    except ValueError as err:  # FormulaError, DesignError, unknown family or link
        message = first_line(err)
        if "rows: " in message:
            message += " (rows numbered as in a spreadsheet: the header is row 1)"
        raise errors.CliError(message) from None
    if not model.design.blocks:
        raise errors.CliError(
            f"the formula {formula!r} has no random-effect term such as (1 | group); "
            "a mixed model needs at least one"
        )
    return model


def _check_method(method: str, model: Model) -> None:
    """Refuse a marginal-likelihood ``--method`` the model's family does not use."""
    if method not in ("reml", "ml", "laplace"):
        return
    from hiermodels.mle.fit import mle_method

    try:
        mle_method(model.family, method)
    except ValueError as err:
        raise errors.CliError(f"--method {method}: {in_command_line_terms(str(err))}") from None


def _ci_prob(text: str) -> float:
    """``--ci-prob``: a probability strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise errors.CliError(f"--ci-prob must be a number between 0 and 1, got {text!r}")
    return value


# ---------------------------------------------------------------- commands


def _consoles() -> tuple[Any, Any]:
    from rich.console import Console

    width = None if sys.stdout.isatty() else 120
    return Console(width=width), Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def _check_out(path: str) -> None:
    """Refuse an output folder that cannot be one before any time is spent fitting."""
    if Path(path).exists() and not Path(path).is_dir():
        raise errors.CliError(f"--out {path} is a file, not a folder; choose another --out")


def _fit(args: argparse.Namespace) -> None:
    out_console, err_console = _consoles()
    _check_out(args.out)
    ci_prob = _ci_prob(args.ci_prob)
    data = _read_csv(args.data)
    model = _model(args.formula, data, args.family, args.weights)
    _check_method(args.method, model)
    steps = Steps(err_console)
    analysis = run_analysis(
        model,
        name=Path(args.data).name,
        method=args.method,
        draws=args.draws,
        chains=args.chains,
        seed=args.seed,
        steps=steps,
        target_accept=args.target_accept,
        ci_prob=ci_prob,
        progressbar=err_console.is_terminal,
    )
    print_summary(analysis, out_console)
    out = Path(args.out)
    with steps.step("write tables, posterior and pictures"):
        # the report draws the pictures and writes them beside it
        reported = analysis.shrinkage_table is not None
        written = write_outputs(analysis, out, pictures=not reported)
        if reported:
            from hiermodels.report import mixed_model_report

            explorer = _write_explorer(analysis, out)
            written += [] if explorer is None else [out / explorer]
            report = mixed_model_report(analysis, explorer_link=explorer)
            written.append(report.write(out))
            written += [out / f"{name}.png" for name in report.images]
    err_console.print(f"wrote {len(written)} files to {out}/", highlight=False)


def _demo(args: argparse.Namespace) -> None:
    from hiermodels import datasets
    from hiermodels.report import mixed_model_report

    out_console, err_console = _consoles()
    _check_out(args.out)
    ci_prob = _ci_prob(args.ci_prob)
    start = time.perf_counter()
    steps = Steps(err_console)
    out = Path(args.out)
    if args.dataset == "baseball":
        path = _baseball(args, steps, out, out_console, ci_prob)
    else:
        formula, family = DEMOS[args.dataset]
        about = datasets.describe(args.dataset).split("\n\n")
        model = _model(formula, datasets.load(args.dataset), family)
        analysis = run_analysis(
            model,
            name=args.dataset,
            method="all",
            draws=args.draws,
            chains=args.chains,
            seed=args.seed,
            steps=steps,
            description=" ".join(about[1].split()) if len(about) > 1 else "",
            target_accept=args.target_accept,
            ci_prob=ci_prob,
            progressbar=err_console.is_terminal,
        )
        print_summary(analysis, out_console)
        with steps.step("pictures and report"):
            out.mkdir(parents=True, exist_ok=True)
            report = mixed_model_report(
                analysis,
                f"hiermodels demo: {args.dataset}",
                explorer_link=_write_explorer(analysis, out),
            )
            path = report.write(out)
            comparison = analysis.comparison
            assert comparison is not None  # method "all" fits EB and full Bayes
            for name, frame in (
                ("shrinkage.csv", comparison.table),
                ("hyperparameters.csv", comparison.hyperparameters),
            ):
                frame.to_csv(out / name, index=False)
    total = time.perf_counter() - start
    err_console.print(f"report: {path}  (total {total:.1f} s)", highlight=False)


def _write_explorer(analysis: Any, out: Path) -> str | None:
    """The explorer page of a one-factor linear mixed model beside the report, by file name.

    Fits the explorer does not show (GLMMs, several grouping factors) have none.
    """
    from hiermodels.explorer import explore
    from hiermodels.explorer.mixed import explorable

    fit = analysis.mle
    if fit is None or not explorable(fit):
        return None
    explore(fit).save(out / EXPLORER_FILENAME)
    return EXPLORER_FILENAME


def _baseball(
    args: argparse.Namespace, steps: Steps, out: Path, console: Any, ci_prob: float
) -> Path:
    """The Efron–Morris demo with the compound-sampling module."""

    from hiermodels import datasets
    from hiermodels.compound import simulate_compound
    from hiermodels.explorer import explore
    from hiermodels.plots import baseball_estimates, baseball_model
    from hiermodels.report import baseball_report, compound_as_groups

    data = datasets.load("efron_morris_1970")
    table = baseball_estimates(data)
    model = baseball_model(data)
    ybar = float(model.y.mean())
    se = float(model.se[0])  # σ² = ȳ(1 − ȳ)/45, as Efron & Morris
    with steps.step("empirical Bayes (marginal ML), James–Stein, Morris intervals"):
        eb = model.fit("ml")
        morris = model.morris_intervals(ci_prob)
    with steps.step("full Bayes: compile and sample", spinner=False):
        bayes = model.fit_bayes(
            draws=args.draws, tune=args.draws, chains=args.chains, random_seed=args.seed
        )
    compared = model.compare(eb, bayes, ci_prob=ci_prob)
    estimates = table.assign(eb=compared["eb_mean"].to_numpy(), full_bayes=compared["bayes_mean"])
    estimates = estimates[["raw", "james_stein", "eb", "full_bayes", "truth"]]
    with steps.step("risk simulations"):
        sims = [
            simulate_compound(2000, len(table), mu=ybar, tau=f * se, se=se, random_seed=args.seed)
            for f in (0.25, 0.5, 1.0, 2.0, 3.0)
        ]
    tse = ((estimates.drop(columns="truth").sub(estimates["truth"], axis=0)) ** 2).sum()
    console.print(rich_table("Per-player estimates", estimates, index=True, digits=3))
    console.print(
        rich_table(
            "Total squared error vs rest of season", tse.rename("TSE").to_frame(), index=True
        )
    )
    about = datasets.describe("efron_morris_1970").split("\n\n")
    with steps.step("pictures and report"):
        report = baseball_report(
            estimates,
            compound_as_groups(compared, morris, "batting average"),
            sims,
            description=" ".join(about[1].split()),
            settings={
                "sampling SD": f"σ = √(ȳ(1 − ȳ)/45) = {se:.4f}",
                "empirical Bayes": f"marginal ML: μ̂ = {eb.mu:.4f}, τ̂ = {eb.tau:.4f}",
                "full Bayes": f"nutpie NUTS, {args.chains} chains × {args.draws} draws",
                "random seed": args.seed,
            },
            timings=steps.timings,
            ci_prob=ci_prob,
            explorer_link=EXPLORER_FILENAME,
        )
        path = report.write(out)
        explore("baseball").save(out / EXPLORER_FILENAME)
        estimates.to_csv(out / "estimates.csv")
        compared.to_csv(out / "comparison.csv")
    return path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    from hiermodels._checks import check_random_seed

    expected = f"expected an integer from 0 to 2**64 - 1, got {text!r}"
    try:
        value = check_random_seed(int(text), name="--seed")
    except ValueError:  # not an integer, or out of the range nutpie takes
        raise argparse.ArgumentTypeError(expected) from None
    return int(value)  # type: ignore[arg-type]


def _acceptance_rate(text: str) -> float:
    """``--target-accept``: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _sampling_options(parser: argparse.ArgumentParser, draws: int, chains: int) -> None:
    parser.add_argument("--draws", type=_positive, default=draws, help="draws per chain")
    parser.add_argument("--chains", type=_positive, default=chains, help="chains")
    parser.add_argument("--seed", type=_seed, default=1, help="random seed, 0 to 2**64 - 1")
    parser.add_argument(
        "--target-accept",
        type=_acceptance_rate,
        default=0.8,
        help="acceptance rate NUTS tunes its step size to (default 0.8; raise on divergences)",
    )
    parser.add_argument(
        "--ci-prob",
        default=str(DEFAULT_CI_PROB),
        help=f"probability of every interval, between 0 and 1 (default {DEFAULT_CI_PROB})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``hiermodels`` command."""
    parser = argparse.ArgumentParser(
        prog="hiermodels",
        description="Mixed models: lme4-style MLEs, empirical Bayes and full Bayes side by side.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a mixed model to a CSV file")
    fit.add_argument("data", help="CSV file with a header row")
    fit.add_argument("formula", help='lme4-style formula, e.g. "y ~ x + (x | g)"')
    fit.add_argument("--family", default="gaussian", help="gaussian (default), binomial, ...")
    fit.add_argument("--method", default="all", type=str.lower, choices=ANALYSIS_METHODS)
    fit.add_argument(
        "--weights",
        metavar="COLUMN",
        help="column of prior weights: precision weights (gaussian), numbers of trials of a "
        "proportion response (binomial)",
    )
    fit.add_argument(
        "--out", default="hiermodels-fit", help=f"output folder (the report is {REPORT_FILENAME})"
    )
    _sampling_options(fit, draws=1000, chains=4)
    demo = sub.add_parser("demo", help="MLE, EB and full Bayes on a shipped dataset, as a report")
    demo.add_argument("dataset", nargs="?", default="sleepstudy", choices=DEMO_NAMES)
    demo.add_argument(
        "--out",
        default="hiermodels-report",
        help=f"output folder (the report is {REPORT_FILENAME})",
    )
    _sampling_options(demo, draws=500, chains=4)
    add_explore_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    with warnings.catch_warnings():
        # warnings outside a step (building the model) print as one line, not as
        # Python's "file:line: Category: message" plus the source line
        warnings.showwarning = show_warning
        try:
            if args.command == "fit":
                _fit(args)
            elif args.command == "explore":
                run_explore(args)
            else:
                _demo(args)
        except errors.CliError as err:
            print(f"hiermodels: error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("hiermodels: interrupted", file=sys.stderr)
            return 130
        except (ValueError, OSError) as err:  # bad input found while fitting or writing
            print(f"hiermodels: error: {first_line(err) or type(err).__name__}", file=sys.stderr)
            return 2
        except Exception as err:  # a bug: still one line, with the exception type to report
            print(
                f"hiermodels: error: unexpected {type(err).__name__}: {first_line(err)}",
                file=sys.stderr,
            )
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
