"""What the ``hiermodels`` command shows and writes.

Progress (:class:`Steps`: a spinner per step, its time, its warnings as one
line each), the printed summary of an :class:`~hiermodels.analysis.Analysis`
as rich tables, and the files written for it (CSV tables, NetCDF
posteriors, PNG pictures).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from hiermodels.analysis import Analysis

__all__ = [
    "Steps",
    "first_line",
    "in_command_line_terms",
    "print_summary",
    "print_warnings",
    "rich_table",
    "show_warning",
    "write_outputs",
]


@dataclass
class Steps:
    """Runs named steps with a spinner, times them and reports their warnings.

    Each finished step prints ``✓ name  1.2 s`` on stderr; warnings raised
    inside a step are printed once each, as one line. The spinner (a rich
    live display) is only shown on a terminal.
    """

    console: Any
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, *, spinner: bool = True) -> Iterator[None]:
        """Time the enclosed block as step ``name``."""
        start = time.perf_counter()
        live = spinner and self.console.is_terminal
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if live:
                with self.console.status(f"{name} …"):
                    yield
            else:
                if self.console.is_terminal:
                    self.console.print(f"[bold]…[/] {name}")
                yield
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        self.console.print(f"[green]✓[/] {name} [dim]{elapsed:.1f} s[/]")
        print_warnings(caught, self.console, indent="  ")


def first_line(message: object) -> str:
    """The first line of a message, stripped (empty for an empty message)."""
    text = str(message).strip()
    return text.splitlines()[0] if text else ""


#: The library's advice names Python arguments; here it names the command's options.
_OPTION_WORDS = (
    ("target_accept (e.g. target_accept=0.95)", "--target-accept (e.g. --target-accept 0.95)"),
    ("raise draws= and tune= (or add chains=)", "raise --draws (or --chains)"),
    ("more informative priors (priors=)", "more informative priors (priors= in Python)"),
    ("method='REML' or 'ML'", "--method reml or ml"),
    ("method='Laplace'", "--method laplace"),
)


def in_command_line_terms(message: str) -> str:
    """``message`` with the sampling advice's argument names turned into the command's options."""
    for python, option in _OPTION_WORDS:
        message = message.replace(python, option)
    return message


def print_warnings(caught: Sequence[Any], console: Any, *, indent: str = "") -> None:
    """Print recorded warnings as one ``warning: …`` line each, each message once."""
    from rich.markup import escape

    seen: set[str] = set()
    for item in caught:
        message = in_command_line_terms(first_line(item.message))
        if message and message not in seen:
            seen.add(message)
            # escaped: level labels such as "[a]" are not rich markup
            console.print(
                f"{indent}[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
            )


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` for warnings raised outside a step: one tidy line."""
    text = first_line(message)
    if text:
        print(f"warning: {text}", file=sys.stderr)


def rich_table(title: str, frame: pd.DataFrame, *, index: bool = False, digits: int = 4) -> Any:
    """A rich Table of ``frame`` (with its index as the first column if ``index``)."""
    import pandas as pd
    from rich.table import Table

    from hiermodels.html_report import format_number

    shown = frame.rename_axis(frame.index.name or "").reset_index() if index else frame
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in shown.columns:
        numeric = pd.api.types.is_numeric_dtype(shown[column])
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in shown.itertuples(index=False):
        table.add_row(*(format_number(v, digits) for v in row))
    return table


def print_summary(analysis: Analysis, console: Any) -> None:
    """An lme4-like summary, then the EB and full-Bayes answers, as rich tables."""
    mle, bayes, ci_prob = analysis.mle, analysis.bayes, analysis.ci_prob
    if mle is not None:
        summary = mle.summary()
        console.print(f"[bold]{summary.title}[/]")
        console.print(f"Formula: {summary.formula}   Family: {summary.family}", highlight=False)
        criteria = "   ".join(f"{k} {v:.4f}" for k, v in summary.criteria.items())
        console.print(criteria, highlight=False)
        console.print(rich_table("Random effects", summary.random))
        groups = ", ".join(f"{g} {n}" for g, n in summary.ngroups.items())
        console.print(f"Number of obs: {summary.nobs}; groups: {groups}", highlight=False)
        if mle.alpha is not None:
            console.print(
                f"Dispersion alpha (Var = mu + mu^2/alpha): {mle.alpha:.4g}", highlight=False
            )
        console.print(rich_table("Fixed effects", summary.fixed, index=True))
        if summary.singular:
            console.print("[yellow]boundary (singular) fit[/]: an SD or correlation is degenerate")
    if analysis.eb is not None and analysis.eb.boundary:
        console.print(
            f"[yellow]EB boundary:[/] {', '.join(analysis.eb.boundary)} = 0 — EB pools those "
            "effects completely, with zero uncertainty"
        )
    if bayes is not None:
        console.print(
            rich_table(
                "Full Bayes: fixed effects", bayes.fixef_summary(ci_prob=ci_prob), index=True
            )
        )
        if analysis.comparison is None:
            varcorr = bayes.varcorr_summary(ci_prob=ci_prob)
            console.print(rich_table("Full Bayes: variance components", varcorr.fillna("")))
        diag = bayes.diagnostics(warn=False)
        state = "[green]ok[/]" if diag.ok else "[yellow]check[/]"
        console.print(
            f"Sampler: {diag.divergences} divergences, max r_hat {diag.max_r_hat:.3f}, "
            f"min bulk ESS {diag.min_ess_bulk:.0f} {state}",
            highlight=False,
        )
    if analysis.comparison is not None:
        from hiermodels.report import shrinkage_digest

        hyper = analysis.comparison.hyperparameters
        console.print(rich_table("Hyperparameters: marginal MLE beside the posterior", hyper))
        digest = shrinkage_digest(analysis.comparison.table)
        console.print(rich_table("Shrinkage: medians over the groups", digest, digits=3))


def _write_netcdf(idata: Any, out: Path, stem: str) -> list[Path]:
    """The whole DataTree as ``<stem>.nc`` and its posterior alone as ``<stem>_posterior.nc``.

    The second opens with ``xarray.open_dataset``; the first with
    ``xarray.open_datatree``.
    """
    posterior = idata["posterior"].to_dataset()
    posterior.attrs = {k: str(v) for k, v in posterior.attrs.items()}
    paths = [out / f"{stem}_posterior.nc", out / f"{stem}.nc"]
    posterior.to_netcdf(paths[0])
    idata.to_netcdf(paths[1])
    return paths


def write_outputs(analysis: Analysis, out: Path, *, pictures: bool = True) -> list[Path]:
    """CSV tables, NetCDF posteriors and (unless ``pictures`` is false) PNG pictures into ``out``.

    The HTML report draws the same pictures and writes them as files too
    (:meth:`~hiermodels.html_report.HtmlReport.write`); a caller that writes
    the report passes ``pictures=False`` so that they are drawn once.
    """
    import pandas as pd

    from hiermodels.html_report import figure_png
    from hiermodels.report import analysis_figures

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    ci_prob = analysis.ci_prob

    def csv(name: str, frame: pd.DataFrame, index: bool = False) -> None:
        frame.to_csv(out / name, index=index)
        written.append(out / name)

    if analysis.mle is not None:
        mle = analysis.mle
        fixed = pd.DataFrame({"estimate": mle.fixef, "se": mle.fixef_se})
        csv("fixef.csv", fixed.rename_axis("coef"), index=True)
        csv("varcorr.csv", mle.varcorr)
        csv("ranef_mle.csv", mle.ranef_frame())
    if analysis.eb is not None:
        csv("ranef_eb.csv", analysis.eb.ranef_summary(ci_prob=ci_prob))
        if analysis.eb.idata is not None:
            written += _write_netcdf(analysis.eb.idata, out, "eb")
    if analysis.bayes is not None:
        csv("posterior_fixef.csv", analysis.bayes.fixef_summary(ci_prob=ci_prob), index=True)
        csv("posterior_varcorr.csv", analysis.bayes.varcorr_summary(ci_prob=ci_prob))
        csv("ranef_bayes.csv", analysis.bayes.ranef_summary(ci_prob=ci_prob))
        written += _write_netcdf(analysis.bayes.idata, out, "idata")
    if analysis.shrinkage_table is not None:
        csv("shrinkage.csv", analysis.shrinkage_table)
    if analysis.comparison is not None:
        csv("hyperparameters.csv", analysis.comparison.hyperparameters)
    for name, make, _ in analysis_figures(analysis) if pictures else ():
        (out / f"{name}.png").write_bytes(figure_png(make()))
        written.append(out / f"{name}.png")
    return written
