"""The result of a full-Bayes fit: :class:`BayesFit` around an ArviZ DataTree.

Summaries come as pandas frames labelled like the MLE results: fixed effects
by coefficient name, variance components by group and term (lme4's
``VarCorr`` layout) and random effects in the long layout ``grpvar, term,
grp`` of :meth:`hiermodels.mle.results.MixedFit.ranef_frame`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.build import OBSERVED
from hiermodels.bayes.convergence import rank_diagnostics
from hiermodels.bayes.draws import (
    LinearPredictorData,
    linear_predictor,
    mean_response,
    pointwise_log_likelihood,
    posterior_predictive_draws,
)
from hiermodels.bayes.priors import Priors, group_term_layout
from hiermodels.bayes.route import SamplingRoute
from hiermodels.bayes.samplers import RUN_SETTINGS
from hiermodels.design.design import Design
from hiermodels.errors import SamplingWarning

__all__ = [
    "BayesFit",
    "Diagnostics",
    "prediction_data",
    "sampling_problem",
    "HDI_PROB",
    "RHAT_MAX",
    "ESS_MIN",
    "ESS_MIN_PER_CHAIN",
    "ESS_WARN_FRACTION",
    "RHAT_WARN",
]

#: Probability mass of the reported highest-density intervals.
HDI_PROB = 0.94
#: Thresholds of :meth:`BayesFit.diagnostics` (Vehtari et al. 2021 recommendations).
RHAT_MAX = 1.01
ESS_MIN = 400
#: Fewer chains need less: 100 per chain (Vehtari et al.), at most :data:`ESS_MIN`.
ESS_MIN_PER_CHAIN = 100
#: :class:`~hiermodels.errors.SamplingWarning` thresholds. The recommended ones above
#: are for final results, and r_hat and ESS estimated from a few hundred draws per
#: chain scatter across them; a warning on every such run would teach users to
#: ignore it. It speaks on any divergence, r_hat beyond twice the recommended excess,
#: or less than half the recommended ESS.
RHAT_WARN = 1.02
ESS_WARN_FRACTION = 0.5
#: An r_hat this large means chains stuck in different places, not slow mixing.
_RHAT_STUCK = 1.5

_STAT_COLUMNS = ["mean", "median", "sd", "hdi_low", "hdi_high", "ess_bulk", "r_hat"]


def _stats(draws: xr.DataArray) -> pd.DataFrame:
    """Posterior mean, sd, 94% HDI, bulk ESS and rank r_hat over chain and draw.

    ``draws`` has dims ``(chain, draw, item)``; returns one row per item.
    Constant draws (fixed values) give NaN ESS and r_hat.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws divide by zero
        hdi = azs.hdi(draws, prob=HDI_PROB)
        ess = azs.ess(draws, method="bulk")
        rhat = azs.rhat(draws)
    item = next(d for d in draws.dims if d not in ("chain", "draw"))
    return pd.DataFrame(
        {
            "mean": draws.mean(("chain", "draw")).values,
            "median": draws.median(("chain", "draw")).values,
            "sd": draws.std(("chain", "draw"), ddof=1).values,
            "hdi_low": hdi.sel(ci_bound="lower").values,
            "hdi_high": hdi.sel(ci_bound="upper").values,
            "ess_bulk": ess.values,
            "r_hat": rhat.values,
        },
        index=pd.Index(draws[item].values, name=item),
    )


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit.

    Attributes
    ----------
    divergences : int
        Divergent transitions after tuning, all chains.
    max_r_hat : float
        Largest rank-normalised r_hat over all sampled quantities.
    min_ess_bulk : float
        Smallest bulk effective sample size.
    worst_r_hat, worst_ess : str
        Where the extremes occur (``"sd_Subject__Days"``, ``"u_Subject[309, Days]"``).
    ok : bool
        No divergence, ``max_r_hat <= RHAT_MAX`` and ``min_ess_bulk >= ess_min``.
    ess_min : float
        The ESS required: :data:`ESS_MIN_PER_CHAIN` per chain, at most
        :data:`ESS_MIN`.
    """

    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    worst_r_hat: str
    worst_ess: str
    ok: bool
    ess_min: float = ESS_MIN

    @property
    def problem(self) -> str | None:
        """What is wrong with the draws and what to do (:func:`sampling_problem`), or ``None``."""
        return sampling_problem(self, tunable=RUN_SETTINGS)


def sampling_problem(diag: Diagnostics, *, tunable: Sequence[str] = ()) -> str | None:
    """What is wrong with the draws and what to do about it, or ``None`` if nothing.

    Something is wrong when a transition diverged, r_hat exceeds
    :data:`RHAT_WARN` or the bulk ESS is below :data:`ESS_WARN_FRACTION` of
    the recommended ``diag.ess_min``; the message then lists every quantity
    outside the recommended thresholds.

    The advice follows the failure: divergent transitions come from
    posterior geometry the sampler cannot follow (typically the funnel of a
    group SD near zero), which more draws do not cure; a high r_hat or a low
    ESS without divergences is slow mixing, which they do.

    Parameters
    ----------
    diag : Diagnostics
        From :meth:`BayesFit.diagnostics`.
    tunable : sequence of str
        Sampler arguments the fitting function accepts, to name the right
        ones (``"target_accept"``, ``"draws"``, ``"tune"``, ``"chains"``).

    Returns
    -------
    str or None
    """
    alarming = (
        diag.divergences > 0
        or not diag.max_r_hat <= RHAT_WARN
        or not diag.min_ess_bulk >= ESS_WARN_FRACTION * diag.ess_min
    )
    if diag.ok or not alarming:
        return None
    found = []
    if diag.divergences:
        found.append(f"{diag.divergences} divergent transition(s) after tuning")
    if not diag.max_r_hat <= RHAT_MAX:
        # three decimals: 1.0204 must not read as the threshold 1.02
        shown = f"{diag.max_r_hat:.3f}" if diag.max_r_hat < 10 else f"{diag.max_r_hat:.3g}"
        found.append(f"max r_hat {shown} ({diag.worst_r_hat}; want <= {RHAT_MAX})")
    if not diag.min_ess_bulk >= diag.ess_min:
        found.append(
            f"min bulk ESS {diag.min_ess_bulk:.0f} ({diag.worst_ess}; want >= {diag.ess_min:.0f})"
        )
    message = "the MCMC draws are not reliable: " + ", ".join(found) + ". "
    if diag.divergences:
        # only an argument the caller can pass is advice; otherwise it is noise
        accept = (
            "raise target_accept (e.g. target_accept=0.95), " if "target_accept" in tunable else ""
        )
        return message + (
            "Divergences mean the sampler cannot follow the posterior's geometry (typically "
            "a funnel where a group SD approaches zero), and sampling longer does not remove "
            f"them: {accept}give the SDs more informative priors (priors=), or "
            "reparameterise (fewer random-effect terms, centred covariates)"
        )
    if not diag.max_r_hat <= _RHAT_STUCK or not diag.min_ess_bulk >= 10:
        return message + (
            "The chains are stuck in different places or do not move at all: more draws "
            "will not fix this. Check the data and model (a constant or separated response, "
            "a parameter the data cannot identify) and the priors"
        )
    longer = (
        "raise draws= and tune= (or add chains=)"
        if {"draws", "tune", "chains"} <= set(tunable)
        else "sample longer"
    )
    return message + (
        f"The chains mix slowly: {longer} and check again; if r_hat does not fall, "
        "look at the priors and the model"
    )


@dataclass(frozen=True, eq=False)
class BayesFit:
    """A full-Bayes (or, with fixed values, empirical-Bayes) fit.

    Attributes
    ----------
    idata : xarray.DataTree
        ArviZ data: ``posterior``, ``sample_stats``, ``observed_data`` and,
        when requested, ``log_likelihood`` and ``posterior_predictive``.
    design : Design
    priors : Priors
        The priors used (defaults merged with overrides).
    sampler : str
        ``"nutpie"`` or ``"pymc"``.
    fixed_values : dict
        Variables held fixed in the graph (empty for full Bayes).
    marginalized : bool
        Whether the sampler ran on the model with the group effects
        integrated out (their draws then come from the exact conditional).
    integrate : {None, "laplace"}
        ``"laplace"``: an approximate posterior, the group effects integrated
        out by the Laplace approximation and drawn from the Gaussian
        approximation at their conditional mode (see
        :mod:`hiermodels.bayes.laplace_density`).
    route : SamplingRoute
        The engine that sampled (:func:`~hiermodels.bayes.route.choose_route`),
        also the ``"route"`` attribute of the ``posterior`` group.
    """

    idata: xr.DataTree
    design: Design
    priors: Priors
    sampler: str = "nutpie"
    fixed_values: Mapping[str, Any] = field(default_factory=dict)
    marginalized: bool = False
    integrate: str | None = None
    route: SamplingRoute = SamplingRoute.FULL_GRAPH

    # ----------------------------------------------------------- posterior
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as an :class:`xarray.Dataset`."""
        return self.idata["posterior"].to_dataset()

    @property
    def _data(self) -> LinearPredictorData:
        return LinearPredictorData.from_design(self.design)

    def fixef_summary(self) -> pd.DataFrame:
        """Fixed effects: one row per coefficient (index ``coef``).

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, median, sd, hdi_low, hdi_high, ess_bulk, r_hat``
            (94% HDI).
        """
        return _stats(self.posterior["beta"])

    def varcorr_summary(self) -> pd.DataFrame:
        """Variance components in lme4's ``VarCorr`` layout, on the SD/correlation scale.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, name`` then the summary statistics of
            :meth:`fixef_summary`. One row per ``sd_<group>__<term>`` (``var2``
            empty), per correlation within a correlated block, then
            ``sigma`` (``grp`` "Residual") or ``alpha`` (``grp`` "Dispersion").
        """
        post = self.posterior
        rows: list[tuple[str, str, str, str]] = []
        series: list[xr.DataArray] = []
        for layout in group_term_layout(self.design):
            g = layout.group
            for term in layout.terms:
                rows.append((g, term, "", f"sd_{g}__{term}"))
                series.append(post[f"sd_{g}__{term}"])
            for a, b in layout.correlated_spans:
                for i in range(a, b):
                    for j in range(i + 1, b):
                        t1, t2 = layout.terms[i], layout.terms[j]
                        rows.append((g, t1, t2, f"corr_{g}[{t1}, {t2}]"))
                        series.append(
                            post[f"corr_{g}"].isel(
                                {f"{g}__term": i, f"{g}__term_bis": j}, drop=True
                            )
                        )
        for name, grp in (("sigma", "Residual"), ("alpha", "Dispersion")):
            if name in post:
                rows.append((grp, "", "", name))
                series.append(post[name])
        labels = [r[3] for r in rows]
        stacked = xr.concat(series, dim=xr.DataArray(labels, dims="name"), coords="minimal")
        table = _stats(stacked.transpose("chain", "draw", "name")).reset_index()
        table.insert(0, "grp", [r[0] for r in rows])
        table.insert(1, "var1", [r[1] for r in rows])
        table.insert(2, "var2", [r[2] for r in rows])
        return table

    def ranef_summary(self) -> pd.DataFrame:
        """Random effects in the long layout of ``MixedFit.ranef_frame``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grpvar, term, grp, mean, median, sd, hdi_low, hdi_high,
            ess_bulk, r_hat``; one row per group, term and level, in the
            order group, term, level.
        """
        parts = []
        for layout in group_term_layout(self.design):
            g = layout.group
            u = self.posterior[f"u_{g}"]
            for term in layout.terms:
                table = _stats(u.sel({f"{g}__term": term}, drop=True)).reset_index(drop=True)
                table.insert(0, "grpvar", g)
                table.insert(1, "term", term)
                table.insert(2, "grp", list(layout.levels))
                parts.append(table)
        if not parts:
            return pd.DataFrame(columns=["grpvar", "term", "grp", *_STAT_COLUMNS])
        return pd.concat(parts, ignore_index=True)

    # --------------------------------------------------------- diagnostics
    def diagnostics(self, *, warn: bool = True, stacklevel: int = 2) -> Diagnostics:
        """Divergences, worst r_hat and worst bulk ESS over every sampled quantity.

        Quantities held fixed (constant draws) and the constant diagonal of
        the correlation matrices are left out.

        Parameters
        ----------
        warn : bool
            Issue a :class:`~hiermodels.errors.SamplingWarning` with the
            message of :func:`sampling_problem` when the draws fail its
            checks (any divergence, r_hat > :data:`RHAT_WARN`, bulk ESS below
            half of :data:`ESS_MIN_PER_CHAIN` per chain). ``ok`` holds the
            stricter recommended thresholds.
        stacklevel : int
            Passed to :func:`warnings.warn`: the frame the warning points at.

        Returns
        -------
        Diagnostics
        """
        post = self.posterior
        divergences = int(self.idata["sample_stats"]["diverging"].sum())
        worst_rhat, worst_ess = (-np.inf, ""), (np.inf, "")
        names = list(post.data_vars)
        columns = [
            post[name]
            .transpose("chain", "draw", ...)
            .values.reshape(post.sizes["chain"], post.sizes["draw"], -1)
            for name in names
        ]
        # every quantity at once: thousands of group effects cost one pass, not one each
        stacked = np.concatenate(columns, axis=2) if columns else np.zeros((1, 1, 0))
        all_rhat, all_ess = rank_diagnostics(stacked)
        constant = stacked.std(axis=(0, 1)) == 0
        all_rhat[constant] = np.nan
        all_ess[constant] = np.nan
        start = 0
        for name, column in zip(names, columns, strict=True):
            stop = start + column.shape[2]
            r, e = all_rhat[start:stop], all_ess[start:stop]
            start = stop
            if np.all(np.isnan(r)):
                continue
            i, k = int(np.nanargmax(r)), int(np.nanargmin(e))
            if r[i] > worst_rhat[0]:
                worst_rhat = (float(r[i]), _label(post[name], i))
            if e[k] < worst_ess[0]:
                worst_ess = (float(e[k]), _label(post[name], k))
        ess_min = float(min(ESS_MIN, ESS_MIN_PER_CHAIN * post.sizes["chain"]))
        # written so that a NaN r_hat or ESS (draws that never move) fails the check
        ok = divergences == 0 and worst_rhat[0] <= RHAT_MAX and worst_ess[0] >= ess_min
        result = Diagnostics(
            divergences, worst_rhat[0], worst_ess[0], worst_rhat[1], worst_ess[1], ok, ess_min
        )
        message = result.problem
        if warn and message is not None:
            warnings.warn(message, SamplingWarning, stacklevel=stacklevel)
        return result

    # ------------------------------------------------- predictive checks
    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood ``(chain, draw, obs)``, from the idata when stored."""
        if "log_likelihood" in self.idata.children:
            return self.idata["log_likelihood"][OBSERVED]
        return pointwise_log_likelihood(self.posterior, self._data)

    def loo(self, **kwargs: Any) -> Any:
        """PSIS-LOO cross-validation (``arviz_stats.loo``).

        Parameters
        ----------
        **kwargs
            Passed to :func:`arviz_stats.loo` (e.g. ``pointwise=True``).

        Returns
        -------
        arviz_stats.ELPDData
        """
        tree = xr.DataTree.from_dict(
            {
                "posterior": self.posterior,
                "log_likelihood": xr.Dataset({OBSERVED: self.log_likelihood()}),
            }
        )
        return azs.loo(tree, **kwargs)

    def posterior_predictive(self, random_seed: int | None = None) -> xr.DataArray:
        """One replicate of the response per posterior draw ``(chain, draw, obs)``.

        Taken from the idata when ``fit_bayes(..., posterior_predictive=True)``
        stored it and no seed is given; otherwise drawn afresh.
        """
        if random_seed is None and "posterior_predictive" in self.idata.children:
            return self.idata["posterior_predictive"][OBSERVED]
        rng = np.random.default_rng(random_seed)
        return posterior_predictive_draws(self.posterior, self._data, rng)

    def predict(
        self,
        newdata: pd.DataFrame,
        *,
        new_levels: Literal["population", "error"] = "population",
        kind: Literal["mean", "link"] = "mean",
        offset: Any = None,
    ) -> xr.DataArray:
        """Posterior draws of the mean response (or linear predictor) for new rows.

        Parameters
        ----------
        newdata : pandas.DataFrame
            Covariates and grouping columns of the new rows.
        new_levels : {"population", "error"}
            Levels not seen in the fit get ``u = 0`` or raise ``ValueError``.
        kind : {"mean", "link"}
            Inverse-link scale (a probability for bernoulli/binomial) or link scale.
        offset : array_like or str, optional
            Offset values or column (required when the model has one).

        Returns
        -------
        xarray.DataArray
            ``(chain, draw, obs)`` with ``obs`` the index of ``newdata``.
        """
        if kind not in ("mean", "link"):
            raise ValueError(f"kind must be 'mean' or 'link', got {kind!r}")
        data = prediction_data(self.design, newdata, new_levels=new_levels, offset=offset)
        eta = linear_predictor(self.posterior, data)
        return eta if kind == "link" else eta.copy(data=mean_response(eta.values, data.family))

    def __repr__(self) -> str:
        post = self.posterior
        return (
            f"BayesFit({self.design.spec.formula!r}, family={self.design.family.name}/"
            f"{self.design.family.link}, sampler={self.sampler}, "
            + ("integrate=laplace (approximate), " if self.integrate == "laplace" else "")
            + f"chains={post.sizes['chain']}, draws={post.sizes['draw']})"
        )


def _label(values: xr.DataArray, flat_index: int) -> str:
    """``name[coord, coord]`` of the flat position ``flat_index`` of a variable."""
    dims = [d for d in values.dims if d not in ("chain", "draw")]
    if not dims:
        return str(values.name)
    shape = [values.sizes[d] for d in dims]
    idx = np.unravel_index(flat_index, shape)
    coords = [str(values[d].values[i]) for d, i in zip(dims, idx, strict=True)]
    return f"{values.name}[{', '.join(coords)}]"


def prediction_data(
    design: Design,
    newdata: pd.DataFrame,
    *,
    new_levels: Literal["population", "error"] = "population",
    offset: ArrayLike | str | None = None,
) -> LinearPredictorData:
    """The arrays of :class:`LinearPredictorData` for new rows.

    Parameters
    ----------
    design : Design
        The fitted design: its fixed-effects encoding and level labels are reused.
    newdata : pandas.DataFrame
        Holds the fixed-effect covariates, the random-effect covariates and
        the grouping-factor columns.
    new_levels : {"population", "error"}
        A grouping level not seen in the fit gets ``u = 0`` (population),
        or raises ``ValueError`` naming the unseen levels.
    offset : array_like or str, optional
        Required when the model has an offset: the values, or a column of ``newdata``.

    Returns
    -------
    LinearPredictorData
    """
    from hiermodels.design.design import fixed_matrix_for, level_codes_for, random_matrix_for

    if new_levels not in ("population", "error"):
        raise ValueError(f"new_levels must be 'population' or 'error', got {new_levels!r}")
    X = fixed_matrix_for(design, newdata)
    columns: dict[str, list[np.ndarray]] = {}
    levels: dict[str, tuple[np.ndarray, list[str]]] = {}
    for block in design.blocks:
        columns.setdefault(block.group, []).append(random_matrix_for(block, newdata))
        # the blocks of one factor share its levels (group_term_layout checks it)
        levels[block.group] = level_codes_for(block, newdata)
    groups = []
    for layout in group_term_layout(design):
        codes, labels = levels[layout.group]
        unseen = sorted({lab for lab, c in zip(labels, codes, strict=True) if c < 0})
        if unseen and new_levels == "error":
            shown = ", ".join(unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise ValueError(
                f"newdata has {len(unseen)} level(s) of {layout.group!r} not in the fit: {shown}; "
                "use new_levels='population' to predict them with u = 0"
            )
        groups.append((layout.group, codes, np.column_stack(columns[layout.group])))
    off = None
    if design.offset is not None:
        if offset is None:
            raise ValueError("the model has an offset: pass offset= (values or a column name)")
        off = np.asarray(newdata[offset] if isinstance(offset, str) else offset, dtype=float)
        if off.shape != (len(newdata),):
            raise ValueError(f"offset must have one value per row of newdata ({len(newdata)})")
    return LinearPredictorData(
        family=design.family,
        X=X,
        groups=tuple(groups),
        offset=off,
        y=None,
        trials=None,
        obs=list(newdata.index),
    )
