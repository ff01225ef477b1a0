"""Estimated marginal means of a factor and their pairwise differences, as emmeans.

The reference grid crosses every level of every factor of the fixed part;
covariates sit at their means (or at the values given in ``at``). A marginal
mean of a level averages the grid's predictions (on the link scale) over the
other factors with equal weights — emmeans' default — within each level of
the ``by`` factors. Each mean is a row ``L`` of weights of the fixed effects.

For a :class:`~hiermodels.mle.results.MixedFit` the means are ``L β̂`` with
the df of the chosen method (:mod:`hiermodels.mle.ddf`): t intervals and t
tests of zero as emmeans on an lmerTest fit (Kenward–Roger also adjusts the
SEs, as emmeans does with pbkrtest). For a
:class:`~hiermodels.bayes.results.BayesFit` they are ``L β`` per posterior
draw, summarised as its fixed effects are (mean, SD, highest-density
interval); a posterior has no df, statistic or p-value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.intervals import check_ci_prob
from hiermodels.names import DEFAULT_CI_PROB

if TYPE_CHECKING:
    from hiermodels.bayes.results import BayesFit
    from hiermodels.design.design import Design
    from hiermodels.mle.ddf import DdfMethod
    from hiermodels.mle.results import MixedFit

__all__ = ["PAIRS_ADJUSTMENTS", "MarginalMeans", "marginal_means", "reference_grid"]

#: Multiplicity adjustments of :meth:`MarginalMeans.pairs` (emmeans' ``adjust``).
PAIRS_ADJUSTMENTS = ("none", "tukey", "bonferroni")
type PairsAdjustment = Literal["none", "tukey", "bonferroni"]


def marginal_means(
    fit: MixedFit | BayesFit,
    factor: str,
    *,
    by: str | Sequence[str] | None = None,
    at: Mapping[str, Any] | None = None,
    ddf: DdfMethod | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
) -> MarginalMeans:
    """Estimated marginal means of ``factor`` (emmeans' ``emmeans(fit, factor, by = by)``).

    Parameters
    ----------
    fit : MixedFit or BayesFit
    factor : str
        A data column used as a categorical factor in the fixed part
        (``"treatment"``; ``"week"`` for a term ``C(week)``).
    by : str or sequence of str, optional
        Factors whose levels get separate means (and separate pairwise
        comparisons), instead of being averaged over.
    at : mapping, optional
        Values of covariates (a number each) and subsets of factor levels
        (a list each) for the reference grid. A covariate that is not a
        fixed-effect column of its own (used only in a transform or an
        interaction) has no mean to read from the design: give it here.
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
        MixedFit only: the df method (default Satterthwaite for LMMs,
        asymptotic for GLMMs). Must be ``None`` for a BayesFit.
    ci_prob : float
        Probability of the intervals.

    Returns
    -------
    MarginalMeans
        ``.table`` holds the means, ``.pairs()`` their differences.

    Raises
    ------
    ValueError
        For an unknown factor, a covariate without a value, or ``ddf``
        given with a BayesFit.
    """
    from hiermodels.mle.results import MixedFit

    ci_prob = check_ci_prob(ci_prob)
    if isinstance(fit, MixedFit):
        from hiermodels.mle.ddf import check_ddf
        from hiermodels.mle.ftests import default_ddf

        ddf = check_ddf(fit, default_ddf(fit) if ddf is None else ddf)
    else:
        # imported only here: the Bayesian results module loads the sampling stack
        from hiermodels.bayes.results import BayesFit

        if not isinstance(fit, BayesFit):
            raise TypeError(
                f"marginal_means needs a MixedFit or a BayesFit, got {type(fit).__name__}"
            )
        if ddf is not None:
            raise ValueError("ddf applies to marginal-likelihood fits; a posterior has no df")
    if fit.design.dropped_columns:
        raise ValueError(
            f"the fixed-effect columns {list(fit.design.dropped_columns)} were dropped for "
            "rank deficiency: some marginal means are not estimable"
        )
    by_names = [by] if isinstance(by, str) else list(by or [])
    grid = reference_grid(fit.design, at)
    levels = _grid_levels(fit.design, at)
    for name in [factor, *by_names]:
        if name not in levels:
            raise ValueError(
                f"{name!r} is not a factor of the fixed part; its factors are {sorted(levels)}"
            )
    if factor in by_names:
        raise ValueError(f"{factor!r} cannot be both the factor and a by factor")
    from hiermodels.design.newdata import fixed_matrix_for

    X = fixed_matrix_for(fit.design, grid)
    keys = [*by_names, factor]
    rows = list(itertools.product(*(levels[name] for name in keys)))
    cell_weights = []
    for row in rows:
        in_cell = np.ones(len(grid), dtype=bool)
        for name, value in zip(keys, row, strict=True):
            in_cell &= grid[name].to_numpy() == value
        cell_weights.append(X[in_cell].mean(axis=0))
    index = (
        pd.MultiIndex.from_tuples(rows, names=keys)
        if len(keys) > 1
        else pd.Index([row[0] for row in rows], name=factor)
    )
    return MarginalMeans(
        fit=fit,
        factor=factor,
        by=tuple(by_names),
        weights=pd.DataFrame(
            np.vstack(cell_weights), index=index, columns=list(fit.design.fixed_names)
        ),
        ddf=ddf,
        ci_prob=ci_prob,
    )


@dataclass(frozen=True, eq=False)
class MarginalMeans:
    """Estimated marginal means of one factor, and the rows of weights behind them.

    Attributes
    ----------
    fit : MixedFit or BayesFit
    factor : str
    by : tuple of str
    weights : pandas.DataFrame
        One row ``L`` per mean, columns the fixed effects; index the
        ``by`` levels and the factor's level.
    ddf : str or None
        The df method (``None`` for a BayesFit).
    ci_prob : float
    """

    fit: MixedFit | BayesFit
    factor: str
    by: tuple[str, ...]
    weights: pd.DataFrame
    ddf: str | None
    ci_prob: float

    @property
    def table(self) -> pd.DataFrame:
        """The means: ``estimate, se, lower, upper`` (+ ``df, statistic, p_value`` for MLE).

        For a MixedFit the interval is ``estimate ∓ t·se`` with the mean's
        df (z for ``"asymptotic"``) and the test is of a zero mean, as
        emmeans' ``summary(emm, infer = TRUE)``; for a BayesFit the
        estimate and SE are the posterior mean and SD and the interval the
        highest-density one. ``attrs``: ``interval``, ``ci_prob``, ``ddf``.
        """
        return self._summarise(self.weights)

    def pairs(self, adjust: PairsAdjustment = "none") -> pd.DataFrame:
        """Differences between every two levels of the factor, within each ``by`` level.

        As emmeans' ``pairs(emm, adjust = ...)``: ``a - b`` for every level
        ``a`` before ``b``.

        Parameters
        ----------
        adjust : {"none", "tukey", "bonferroni"}
            For MLE fits, the p-values and intervals of one ``by`` level's
            ``m`` contrasts among ``k`` means: unadjusted; Tukey's studentized
            range with each contrast's df (``P(Q_{k,df} > √2 |t|)`` and the
            critical value ``q_{k,df}(ci_prob)/√2``, emmeans' default for
            ``pairs``); or Bonferroni (``min(1, m p)``, the t quantile at
            ``1 − (1 − ci_prob)/(2m)``). Bayes fits take ``"none"`` only:
            their intervals are posterior intervals of each difference.

        Returns
        -------
        pandas.DataFrame
            As :attr:`table`, indexed by the ``by`` levels and ``contrast``;
            ``attrs["adjust"]`` names the adjustment.
        """
        if adjust not in PAIRS_ADJUSTMENTS:
            raise ValueError(
                f"adjust must be one of {', '.join(map(repr, PAIRS_ADJUSTMENTS))}; got {adjust!r}"
            )
        groups = (
            self.weights.groupby(level=list(self.by), sort=False)
            if self.by
            else [((), self.weights)]
        )
        rows: list[tuple[Any, ...]] = []
        vectors: list[np.ndarray] = []
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            labels = list(group.index.get_level_values(self.factor))
            values = group.to_numpy()
            for i, j in itertools.combinations(range(len(labels)), 2):
                rows.append((*key, f"{labels[i]} - {labels[j]}"))
                vectors.append(values[i] - values[j])
        names = [*self.by, "contrast"]
        index = (
            pd.MultiIndex.from_tuples(rows, names=names)
            if self.by
            else pd.Index([row[0] for row in rows], name="contrast")
        )
        differences = pd.DataFrame(np.vstack(vectors), index=index, columns=self.weights.columns)
        table = self._summarise(differences)
        if adjust != "none":
            from hiermodels.mle.results import MixedFit

            if not isinstance(self.fit, MixedFit):
                raise ValueError(
                    "adjust= applies to the tests of MLE fits; a Bayes fit's pairs are "
                    "posterior intervals of each difference (adjust='none')"
                )
            family_of = index.droplevel("contrast") if self.by else None
            table = _adjusted(table, adjust, family_of, self.ci_prob)
        table.attrs["adjust"] = adjust
        return table

    def _summarise(self, weights: pd.DataFrame) -> pd.DataFrame:
        from hiermodels.mle.results import MixedFit

        if isinstance(self.fit, MixedFit):
            return _mle_table(self.fit, weights, self.ddf, self.ci_prob)  # type: ignore[arg-type]
        return _posterior_table(self.fit, weights, self.ci_prob)


def _adjusted(
    table: pd.DataFrame, adjust: str, family_of: pd.Index | None, ci_prob: float
) -> pd.DataFrame:
    """``table``'s p-values and intervals adjusted within each family of contrasts."""
    out = table.copy()
    families = (
        np.zeros(len(table), dtype=int)
        if family_of is None
        else pd.factorize(pd.Index(family_of))[0]
    )
    for family in np.unique(families):
        rows = np.flatnonzero(families == family)
        m = rows.size
        # m = k(k - 1)/2 pairs among k means
        k = round((1.0 + math.sqrt(1.0 + 8.0 * m)) / 2.0)
        if adjust == "tukey" and k < 3:
            continue  # two means: one comparison, Tukey's is the t test
        df = table["df"].to_numpy()[rows]
        if adjust == "tukey":
            t = np.abs(table["statistic"].to_numpy()[rows])
            # the range of k means exceeds one difference's |t| at least as often; the
            # bound keeps p positive where the studentized range's tail underflows to 0
            p = np.maximum(
                stats.studentized_range.sf(np.sqrt(2.0) * t, k, df),
                table["p_value"].to_numpy()[rows],
            )
            critical = stats.studentized_range.ppf(ci_prob, k, df) / np.sqrt(2.0)
        else:
            p = np.minimum(1.0, m * table["p_value"].to_numpy()[rows])
            tail = 1.0 - (1.0 - ci_prob) / (2.0 * m)
            critical = np.where(np.isinf(df), stats.norm.ppf(tail), stats.t.ppf(tail, df))
        estimate = table["estimate"].to_numpy()[rows]
        se = table["se"].to_numpy()[rows]
        positions = out.columns.get_indexer(["p_value", "lower", "upper"])
        out.iloc[rows, positions[0]] = p
        out.iloc[rows, positions[1]] = estimate - critical * se
        out.iloc[rows, positions[2]] = estimate + critical * se
    return out


def _mle_table(
    fit: MixedFit, weights: pd.DataFrame, ddf: DdfMethod, ci_prob: float
) -> pd.DataFrame:
    from hiermodels.mle.ftests import t_tests

    tests = t_tests(fit, weights.to_numpy(), ddf)
    quantile = np.where(
        np.isinf(tests["df"]),
        stats.norm.ppf(0.5 + ci_prob / 2.0),
        stats.t.ppf(0.5 + ci_prob / 2.0, tests["df"].clip(lower=1e-12)),
    )
    table = pd.DataFrame(
        {
            "estimate": tests["estimate"].to_numpy(),
            "se": tests["se"].to_numpy(),
            "lower": (tests["estimate"] - quantile * tests["se"]).to_numpy(),
            "upper": (tests["estimate"] + quantile * tests["se"]).to_numpy(),
            "df": tests["df"].to_numpy(),
            "statistic": tests["statistic"].to_numpy(),
            "p_value": tests["p_value"].to_numpy(),
        },
        index=weights.index,
    )
    table.attrs.update(interval="z" if ddf == "asymptotic" else "t", ci_prob=ci_prob, ddf=ddf)
    return table


def _posterior_table(fit: BayesFit, weights: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    import xarray as xr

    from hiermodels.intervals import summarise_draws

    beta = fit.posterior["beta"].sel(coef=list(weights.columns))
    L = xr.DataArray(weights.to_numpy(), dims=("row", "coef"))
    draws = xr.dot(beta, L, dim="coef").assign_coords(row=np.arange(len(weights)))
    summary = summarise_draws(draws, ci_prob)
    table = pd.DataFrame(
        summary[["estimate", "se", "lower", "upper"]].to_numpy(),
        index=weights.index,
        columns=["estimate", "se", "lower", "upper"],
    )
    table.attrs.update(interval=summary.attrs["interval"], ci_prob=ci_prob, ddf=None)
    return table


def _model_spec(design: Design) -> Any:
    spec = design.fixed_model_spec
    return spec.resolve() if hasattr(spec, "resolve") else spec


def _grid_levels(design: Design, at: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Every categorical data column of the fixed part and its levels (``at`` subsets them)."""
    spec = _model_spec(design)
    data_columns = {str(v) for v in spec.required_variables}
    levels: dict[str, list[Any]] = {}
    for name, (kind, state) in spec.encoder_state.items():
        if getattr(kind, "value", kind) != "categorical":
            continue
        factor = next(f for term in spec.terms for f in term.factors if f.expr == name)
        columns = [str(v) for v in spec.factor_variables[factor] if str(v) in data_columns]
        if len(columns) != 1:
            raise ValueError(
                f"a reference grid needs factors of one column; {name!r} uses {columns}"
            )
        known = list(state["categories"])
        chosen = known
        if at is not None and columns[0] in at:
            chosen = list(np.atleast_1d(at[columns[0]]))
            unknown = [level for level in chosen if level not in known]
            if unknown:
                raise ValueError(f"levels {unknown} of {columns[0]!r} are not among {known}")
        levels[columns[0]] = chosen
    return levels


def reference_grid(design: Design, at: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """emmeans' reference grid: every combination of factor levels, covariates at their means.

    Parameters
    ----------
    design : Design
    at : mapping, optional
        Covariate values and factor-level subsets (see :func:`marginal_means`).

    Returns
    -------
    pandas.DataFrame
        One row per combination; a column per data column of the fixed part.

    Raises
    ------
    ValueError
        For a covariate whose mean the design does not hold and ``at`` does
        not give.
    """
    spec = _model_spec(design)
    levels = _grid_levels(design, at)
    data_columns = sorted(str(v) for v in spec.required_variables)
    unknown = sorted(set(at or {}) - set(data_columns))
    if unknown:
        raise ValueError(f"at= names {unknown}, not columns of the fixed part {data_columns}")
    covariates = [c for c in data_columns if c not in levels]
    values: dict[str, float] = {}
    for column in covariates:
        if at is not None and column in at:
            given = np.asarray(at[column], dtype=float)
            if given.ndim != 0:
                raise ValueError(f"give one value of the covariate {column!r} in at=")
            values[column] = float(given)
        else:
            values[column] = _covariate_mean(design, spec, column)
    cells = list(itertools.product(*levels.values())) if levels else [()]
    grid = pd.DataFrame(cells, columns=list(levels))
    for column, mean in values.items():
        grid[column] = mean
    return grid


def _covariate_mean(design: Design, spec: Any, column: str) -> float:
    """The mean of a covariate that is a fixed-effect column of its own."""
    for term, indices in spec.term_indices.items():
        if len(term.factors) == 1 and term.factors[0].expr == column and len(indices) == 1:
            return float(design.X[:, indices[0]].mean())
    raise ValueError(
        f"the covariate {column!r} is not a fixed-effect column of its own, so its mean is "
        f"not in the design: give its value, e.g. at={{{column!r}: ...}}"
    )
