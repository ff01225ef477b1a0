"""The parametric bootstrap of a mixed model (lme4's ``bootMer``).

:func:`parametric_bootstrap` simulates ``nsim`` responses from the fitted
model (new group effects for every replicate,
:func:`~hiermodels.mle.simulate.simulate_responses`) and refits each one
from the estimates: the fitted :class:`~hiermodels.design.design.Design`
with its response replaced (the formula is not evaluated again), and θ
started at θ̂. The replicates' parameters are kept in a
:class:`BootstrapResult`, whose :meth:`~BootstrapResult.confint` gives
percentile, basic or normal intervals.

Refits that raise are excluded and reported — how many, and why — in a
:class:`~hiermodels.errors.ConvergenceWarning`; refits on the boundary are
kept (as ``bootMer`` keeps them) and counted.

A Gaussian fit from a Dask DataFrame holds root rows ``R_c`` of every
cell's moments instead of rows (:mod:`hiermodels.design.compressed`), and
its replicates are drawn on them exactly in distribution: with
``z ~ N(0, I)`` on the cell's ``r_c`` root rows, ``R_cᵀ(R_c γ + σ z)`` has
the law of the rows' ``V_cᵀ(V_c γ + σ e)``, ``‖z‖²`` is the part of
``σ⁻²‖e‖²`` in the span of the cell's columns, and what lies outside it,
``σ² χ²`` on ``n − Σ r_c`` degrees of freedom over all cells, goes into one
added row whose columns are zero (:func:`statistics_replicates`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from hiermodels.design.design import Design
from hiermodels.errors import ConvergenceWarning, SingularFitWarning
from hiermodels.intervals import check_ci_prob
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.covariance import covariance_to_sd_corr
from hiermodels.mle.simulate import as_generator, simulate_responses
from hiermodels.names import (
    DEFAULT_CI_PROB,
    correlation_label,
    correlation_name,
    sd_name,
    term_dim,
    term_pair_dim,
)

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = [
    "BOOTSTRAP_INTERVALS",
    "BootstrapResult",
    "parameter_names",
    "parameter_values",
    "parametric_bootstrap",
]

#: The intervals :meth:`BootstrapResult.confint` computes.
BOOTSTRAP_INTERVALS = ("percentile", "basic", "normal")

#: What a refit may raise on an unlucky simulated response (a matrix that is not
#: positive definite, a non-finite deviance, an optimiser giving up); anything
#: else is a bug and propagates.
_REFIT_FAILURES = (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError)


# ------------------------------------------------------------ parameter vector
def parameter_names(fit: MixedFit) -> list[str]:
    """Every parameter of a fit, in the order of :meth:`MixedFit.confint`'s rows.

    Per random-effect block (θ order) its SDs ``sd_<g>__<t>`` then its
    correlations ``corr_<g>[<t1>,<t2>]``; ``sigma`` (Gaussian models, and
    ``√φ`` of the Gamma and inverse Gaussian, lme4's ``sigma()``); ``alpha``
    (negative binomial); the fixed-effect names.
    """
    names: list[str] = []
    for block in fit.layout.blocks:
        names.extend(sd_name(block.group, term) for term in block.terms)
        names.extend(
            correlation_label(block.group, block.terms[j], block.terms[k])
            for j in range(block.n_terms)
            for k in range(j + 1, block.n_terms)
        )
    if fit.residual_sd is not None:
        names.append("sigma")
    if fit.alpha is not None:
        names.append("alpha")
    names.extend(fit.design.fixed_names)
    return names


def parameter_values(
    layout: ReLayout,
    theta: np.ndarray,
    sigma: float,
    beta: np.ndarray,
    *,
    residual_sd: float | None,
    alpha: float | None,
) -> np.ndarray:
    """The values of :func:`parameter_names`, from ``θ``, ``σ``, ``β`` (and ``α``).

    ``sigma`` scales the relative covariance factors (1 for GLMMs);
    ``residual_sd`` is the ``sigma`` row, ``None`` when the family has none.
    """
    values: list[float] = []
    for block, cov in zip(layout.blocks, layout.theta.covariances(theta, sigma), strict=True):
        sds, corr = covariance_to_sd_corr(cov)
        values.extend(sds)
        values.extend(corr[j, k] for j in range(block.n_terms) for k in range(j + 1, block.n_terms))
    if residual_sd is not None:
        values.append(residual_sd)
    if alpha is not None:
        values.append(alpha)
    values.extend(beta)
    return np.asarray(values, dtype=float)


def fit_parameters(fit: MixedFit) -> np.ndarray:
    """:func:`parameter_values` of a fit's own estimates."""
    return parameter_values(
        fit.layout,
        fit.theta,
        fit.sigma,
        fit.beta,
        residual_sd=fit.residual_sd,
        alpha=fit.alpha,
    )


# ------------------------------------------------------------------ refitting
@dataclass(frozen=True)
class _Refitter:
    """Everything a worker needs to refit the design to new responses."""

    design: Design
    method: str
    start: np.ndarray
    options: dict[str, Any]

    def refit(self, y: np.ndarray) -> MixedFit:
        """The model fitted to response ``y``, from θ̂."""
        from hiermodels.mle.fit import fit_glmm, fit_lmm

        design = replace(self.design, y=y)
        if self.design.family.is_gaussian:
            return fit_lmm(design, self.method, start=self.start, **self.options)
        return fit_glmm(design, start=self.start, **self.options)

    def run(self, responses: np.ndarray) -> list[_Outcome]:
        """Refit every row of ``responses``; the parameters or why the refit failed."""
        outcomes = []
        for y in responses:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    fit = self.refit(y)
                except _REFIT_FAILURES as error:
                    outcomes.append(
                        _Outcome(None, None, False, (), f"{type(error).__name__}: {error}")
                    )
                    continue
            noted = tuple(
                sorted(
                    {
                        w.category.__name__
                        for w in caught
                        if not issubclass(w.category, SingularFitWarning)
                    }
                )
            )
            outcomes.append(_Outcome(fit_parameters(fit), fit.theta, fit.singular, noted, None))
        return outcomes


@dataclass(frozen=True)
class _Outcome:
    """One refit: its parameters and θ (None when it failed), boundary flag, warnings, error."""

    values: np.ndarray | None
    theta: np.ndarray | None
    singular: bool
    warned: tuple[str, ...]
    error: str | None


_WORKER: _Refitter | None = None


def _start_worker(refitter: _Refitter) -> None:
    global _WORKER
    _WORKER = refitter


def _run_in_worker(responses: np.ndarray) -> list[_Outcome]:
    if _WORKER is None:
        raise RuntimeError("the bootstrap worker was not initialised")
    return _WORKER.run(responses)


def _chunks(responses: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, responses.shape[0], size):
        yield responses[start : start + size]


def _refit_options(fit: MixedFit, options: dict[str, Any] | None) -> dict[str, Any]:
    """``fit_glmm``'s keywords that reproduce the fit's method, with the caller's."""
    chosen = dict(options or {})
    if fit.design.family.is_gaussian:
        return chosen
    if fit.method == "Laplace (nAGQ=0)":
        chosen.setdefault("n_agq", 0)
    elif fit.method == "AGQ" and "n_agq" not in chosen:
        raise ValueError(
            "an adaptive-quadrature fit does not record its number of nodes: "
            "pass fit_options={'n_agq': ...}"
        )
    return chosen


# --------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """The replicates of a parametric bootstrap and their intervals.

    Attributes
    ----------
    replicates : xarray.Dataset
        One entry per successful refit along dim ``replicate``: ``beta``
        (dims ``replicate, coef``), ``sd_<g>__<t>``, ``corr_<g>`` (dims
        ``replicate, <g>__term, <g>__term_bis``, for a factor with one
        correlated block), ``sigma`` (Gaussian models; ``√φ`` of the Gamma
        and inverse Gaussian), ``alpha`` (negative binomial). ``attrs``:
        ``nsim``, ``n_failed``, ``n_singular``, ``method``.
    estimates : pandas.Series
        The original fit's parameters (:func:`parameter_names`).
    draws : pandas.DataFrame
        The same replicates flat: one row per successful refit, one column
        per parameter, in the order of :attr:`estimates`.
    theta : numpy.ndarray
        ``(replicates, len(θ))`` the relative covariance parameters of the
        same refits (lme4's ``theta``), in the rows' order of :attr:`draws`.
    nsim : int
        Replicates simulated.
    failures : collections.Counter
        Why refits failed (exception type and message), with counts; they
        are not among the replicates.
    n_singular : int
        Successful refits on the boundary (kept, as ``bootMer`` keeps them).
    warned : collections.Counter
        Warning classes (other than the singular-fit warning) the kept
        refits raised, with counts.
    """

    replicates: xr.Dataset
    estimates: pd.Series
    draws: pd.DataFrame
    theta: np.ndarray
    nsim: int
    failures: Counter[str] = field(default_factory=Counter)
    n_singular: int = 0
    warned: Counter[str] = field(default_factory=Counter)

    @property
    def n_failed(self) -> int:
        """Number of refits that failed and are excluded."""
        return sum(self.failures.values())

    def confint(
        self,
        method: Literal["percentile", "basic", "normal"] = "percentile",
        ci_prob: float = DEFAULT_CI_PROB,
    ) -> pd.DataFrame:
        """Bootstrap confidence intervals of every parameter.

        Parameters
        ----------
        method : {"percentile", "basic", "normal"}
            With ``θ̂`` the estimate, ``θ*`` the replicates, ``q`` their
            quantiles (linear interpolation) and ``a = (1 − ci_prob)/2``:
            ``"percentile"`` is ``[q(a), q(1 − a)]``; ``"basic"`` is
            ``[2θ̂ − q(1 − a), 2θ̂ − q(a)]``; ``"normal"`` is
            ``θ̂ − bias ∓ z·sd(θ*)`` with ``bias = mean(θ*) − θ̂``, as the
            ``boot`` package's ``boot.ci`` that ``lme4::confint(method =
            "boot")`` calls.
        ci_prob : float
            Probability of the intervals, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            Index the parameters (:attr:`estimates`' order); columns
            ``estimate`` (the fit's), ``lower``, ``upper``. ``attrs``:
            ``interval`` (``"bootstrap-<method>"``), ``ci_prob``, ``nsim``
            and ``n_failed``.
        """
        if method not in BOOTSTRAP_INTERVALS:
            raise ValueError(
                f"method must be one of {', '.join(map(repr, BOOTSTRAP_INTERVALS))}; got {method!r}"
            )
        ci_prob = check_ci_prob(ci_prob)
        if self.draws.empty:
            raise ValueError("no bootstrap refit succeeded: there are no replicates")
        tail = (1.0 - ci_prob) / 2.0
        draws = self.draws.to_numpy()
        estimate = self.estimates.to_numpy()
        if method == "normal":
            half = stats.norm.ppf(1.0 - tail) * draws.std(axis=0, ddof=1)
            centre = 2.0 * estimate - draws.mean(axis=0)
            lower, upper = centre - half, centre + half
        else:
            low_q, high_q = np.quantile(draws, [tail, 1.0 - tail], axis=0)
            if method == "percentile":
                lower, upper = low_q, high_q
            else:
                lower, upper = 2.0 * estimate - high_q, 2.0 * estimate - low_q
        table = pd.DataFrame(
            {"estimate": estimate, "lower": lower, "upper": upper},
            index=pd.Index(self.estimates.index, name="parameter"),
        )
        table.attrs.update(
            interval=f"bootstrap-{method}", ci_prob=ci_prob, nsim=self.nsim, n_failed=self.n_failed
        )
        return table

    def __repr__(self) -> str:
        return (
            f"<BootstrapResult: {self.draws.shape[0]} of {self.nsim} refits, "
            f"{self.n_failed} failed, {self.n_singular} singular>"
        )


def _replicate_dataset(fit: MixedFit, draws: pd.DataFrame, attrs: dict[str, Any]) -> xr.Dataset:
    """The flat replicates as a Dataset with the names of :meth:`MixedFit.to_xarray`."""
    dims = "replicate"
    coords = {dims: np.arange(draws.shape[0])}
    data: dict[str, xr.DataArray] = {
        "beta": xr.DataArray(
            draws[list(fit.design.fixed_names)].to_numpy(),
            dims=(dims, "coef"),
            coords={**coords, "coef": list(fit.design.fixed_names)},
        )
    }
    for name in ("sigma", "alpha"):
        if name in draws:
            data[name] = xr.DataArray(draws[name].to_numpy(), dims=dims, coords=coords)
    for group, idx in fit.layout.factor_blocks.items():
        for i in idx:
            block = fit.layout.blocks[i]
            for term in block.terms:
                name = sd_name(group, term)
                data[name] = xr.DataArray(draws[name].to_numpy(), dims=dims, coords=coords)
            if block.n_terms > 1 and len(idx) == 1:
                q = block.n_terms
                corr = np.broadcast_to(np.eye(q), (draws.shape[0], q, q)).copy()
                for j in range(q):
                    for k in range(j + 1, q):
                        label = correlation_label(group, block.terms[j], block.terms[k])
                        corr[:, j, k] = corr[:, k, j] = draws[label].to_numpy()
                tdim, bis = term_dim(group), term_pair_dim(group)
                data[correlation_name(group)] = xr.DataArray(
                    corr,
                    dims=(dims, tdim, bis),
                    coords={**coords, tdim: list(block.terms), bis: list(block.terms)},
                )
    return xr.Dataset(data, attrs=attrs)


# ------------------------------------------------------------------- driver
def parametric_bootstrap(
    fit: MixedFit,
    nsim: int = 1000,
    *,
    random_seed: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    progressbar: bool = True,
    fit_options: dict[str, Any] | None = None,
) -> BootstrapResult:
    """Refit the model to ``nsim`` responses simulated from it.

    Parameters
    ----------
    fit : MixedFit
        The fitted model.
    nsim : int
        Number of bootstrap replicates.
    random_seed : int, numpy.random.Generator or None
        Seed of the simulated responses; with the same seed the replicates
        are the same whatever ``n_jobs``.
    n_jobs : int
        Worker processes refitting side by side (``-1``: one per CPU). A
        refit is mostly Python work between short compiled kernels, so
        threads queue on the interpreter lock (two threads refit sleepstudy
        no faster than one): workers are processes, spawned, each importing
        the package and loading the kernels — seconds before its first refit.
        They pay off when the refits take much longer than that (large data,
        many replicates); a script that uses them must guard its entry point
        with ``if __name__ == "__main__":``, as every spawned process pool.
    progressbar : bool
        Show a progress bar (rich) while refitting.
    fit_options : dict, optional
        Keywords for the refits' :func:`~hiermodels.mle.fit.fit_lmm` or
        :func:`~hiermodels.mle.fit.fit_glmm` (``optimizer``, ``n_agq``,
        ``laplace``); by default the refits use the fit's method.

    Returns
    -------
    BootstrapResult

    Warns
    -----
    ConvergenceWarning
        When refits failed: how many, and the reasons; they are excluded
        from the replicates.
    """
    if int(n_jobs) != n_jobs or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
    options = _refit_options(fit, fit_options)
    rng = as_generator(random_seed)
    responses = simulate_responses(fit, nsim, random_seed=rng)
    design = fit.design
    if design.has_root_rows:
        design, responses = statistics_replicates(fit, responses, rng)
    refitter = _Refitter(design, fit.method, fit.theta, options)
    outcomes = _run(refitter, responses, workers, progressbar)
    names = parameter_names(fit)
    kept = [o for o in outcomes if o.values is not None]
    values = [o.values for o in outcomes if o.values is not None]
    thetas = [o.theta for o in outcomes if o.theta is not None]
    draws = pd.DataFrame(np.vstack(values) if values else np.zeros((0, len(names))), columns=names)
    failures = Counter(o.error for o in outcomes if o.error is not None)
    n_singular = sum(o.singular for o in kept)
    warned = Counter(name for o in kept for name in o.warned)
    if failures:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in failures.most_common())
        warnings.warn(
            f"{sum(failures.values())} of {nsim} bootstrap refits failed and are excluded: "
            f"{reasons}",
            ConvergenceWarning,
            stacklevel=3,
        )
    attrs = {
        "nsim": int(nsim),
        "n_failed": int(sum(failures.values())),
        "n_singular": int(n_singular),
        "method": fit.method,
    }
    return BootstrapResult(
        replicates=_replicate_dataset(fit, draws, attrs),
        estimates=pd.Series(fit_parameters(fit), index=names, name="estimate"),
        draws=draws,
        theta=np.vstack(thetas) if thetas else np.zeros((0, fit.theta.size)),
        nsim=int(nsim),
        failures=failures,
        n_singular=int(n_singular),
        warned=warned,
    )


def statistics_replicates(
    fit: MixedFit, responses: np.ndarray, rng: np.random.Generator
) -> tuple[Design, np.ndarray]:
    """The design of root rows with a residual row, and the replicates in its convention.

    Parameters
    ----------
    fit : MixedFit
        A Gaussian fit whose design holds root rows of cell moments.
    responses : numpy.ndarray
        ``(nsim, r)`` responses simulated on the root rows
        (:func:`~hiermodels.mle.simulate.simulate_responses`).
    rng : numpy.random.Generator
        Draws the residual row's ``σ² χ²`` part of every replicate.

    Returns
    -------
    design : Design
        The fit's design with one more row, zero in every column.
    responses : numpy.ndarray
        ``(nsim, r + 1)``: the design's ``y`` (the root rows' less the
        response shift), then ``σ √χ²`` on ``n − r`` degrees of freedom.
    """
    design = fit.design
    residual_df = design.nobs - design.n_rows
    tail = np.zeros(responses.shape[0])
    if residual_df > 0:
        tail = fit.sigma * np.sqrt(rng.chisquare(residual_df, size=responses.shape[0]))
    shifted = responses - design.response_shift * design.ones[None, :]
    blocks = tuple(
        replace(
            block,
            codes=np.append(block.codes, 0),
            X=np.vstack([block.X, np.zeros((1, block.n_terms))]),
        )
        for block in design.blocks
    )
    compressed = design.compressed
    assert compressed is not None and compressed.ones is not None
    extended = replace(
        design,
        y=np.append(design.y, 0.0),
        X=np.vstack([design.X, np.zeros((1, design.X.shape[1]))]),
        blocks=blocks,
        rows=pd.RangeIndex(design.n_rows + 1),
        compressed=replace(compressed, ones=np.append(compressed.ones, 0.0)),
    )
    return extended, np.column_stack([shifted, tail])


def _run(
    refitter: _Refitter, responses: np.ndarray, workers: int, progressbar: bool
) -> list[_Outcome]:
    """Refit every row of ``responses``, in this process or in ``workers`` processes."""
    from rich.progress import Progress

    total = responses.shape[0]
    # chunks small enough for a smooth bar and an even load, large enough that
    # shipping them to a worker costs little beside the refits
    size = max(1, min(50, math.ceil(total / (4 * workers))))
    with Progress(disable=not progressbar, transient=True) as progress:
        task = progress.add_task("bootstrap refits", total=total)
        if workers == 1:
            outcomes: list[_Outcome] = []
            for chunk in _chunks(responses, size):
                outcomes.extend(refitter.run(chunk))
                progress.advance(task, chunk.shape[0])
            return outcomes
        # spawned, not forked: forking a process that runs threads (numba's, BLAS's)
        # can deadlock the child
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(refitter,),
        ) as pool:
            results: list[list[_Outcome]] = []
            for chunk_outcomes in pool.map(_run_in_worker, _chunks(responses, size)):
                results.append(chunk_outcomes)
                progress.advance(task, len(chunk_outcomes))
        return [outcome for chunk_outcomes in results for outcome in chunk_outcomes]
