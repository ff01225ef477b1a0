"""Fits from Dask DataFrames equal the pandas fits of the same rows.

Every Gaussian reference fit of ``tests/reference/lme4`` (and the weighted
ones) is refitted from a Dask DataFrame of several partitions, on Dask's
threaded scheduler and on a ``dask.distributed.LocalCluster`` of two
single-threaded worker processes with a small memory limit: estimates,
log-likelihood, conditional modes and SDs agree with the pandas fit (the
log-likelihood, fixed effects and σ to 1e-8 relative; θ and what depends
on its curvature to 1e-7, the optimiser's stopping resolution — at one θ
everything agrees to 1e-10) (the pandas fits themselves match lme4, see
``tests/mle/test_lmm_reference.py``). So do the empirical-Bayes conditionals
and the marginal posterior's log density and gradient. A Bernoulli GLMM
fitted from aggregated cells equals the row-level fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import cache

import dask
import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import DesignError
from hiermodels.mle.results import MixedFit
from tests.mle.test_lmm_reference import GAUSSIAN_FITS, _data_for
from tests.mle.test_weights import WEIGHTED_LMMS
from tests.reference.lme4_names import load_reference

TOLERANCE = 1e-8
#: θ is where the optimiser stops on a criterion flat to round-off at its optimum; two
#: evaluations that differ in the last bits of the cross products stop this close.
THETA_TOLERANCE = 1e-8
REFERENCE_FITS = [name for name in GAUSSIAN_FITS if isinstance(name, str)] + WEIGHTED_LMMS


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-threaded worker processes with a small memory limit."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        memory_limit="768MiB",
        processes=True,
        dashboard_address=None,
    ) as local:
        yield local


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "threads":
        with dask.config.set(scheduler="threads"):
            yield "threads"
    else:
        local = request.getfixturevalue("cluster")
        with distributed.Client(local, set_as_default=True):
            yield "distributed"


def _case(name: str) -> tuple[str, pd.DataFrame, dict[str, object], str]:
    ref = load_reference(name)
    data = _data_for(ref) if name in GAUSSIAN_FITS else hm.datasets.load(ref["dataset"])
    options: dict[str, object] = {}
    if ref.get("weights") is not None:
        data = data.assign(prior_weight=np.asarray(ref["weights"], dtype=float))
        options["weights"] = "prior_weight"
    return str(ref["formula"]), data.reset_index(drop=True), options, str(ref["method"])


@cache
def pandas_fit(name: str) -> MixedFit:
    formula, data, options, method = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hm.Model(formula, data, **options).fit_mle(method=method)


def dask_model(name: str, npartitions: int = 3) -> hm.Model:
    formula, data, options, _ = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hm.Model(formula, dd.from_pandas(data, npartitions=npartitions), **options)


@cache
def dask_fit_at_pandas_theta(name: str) -> MixedFit:
    """The fit from a Dask DataFrame (threads), evaluated at the pandas fit's θ."""
    expected = pandas_fit(name)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dask_model(name).fit_mle(method=expected.method, theta=expected.theta)


def _close(
    ours: object, expected: object, scale: float | None = None, tolerance: float = TOLERANCE
) -> None:
    a, b = np.asarray(ours, dtype=float), np.asarray(expected, dtype=float)
    size = np.max(np.abs(b)) if scale is None else scale
    assert np.max(np.abs(a - b), initial=0.0) <= tolerance * max(size, 1e-300)


@pytest.mark.parametrize("name", REFERENCE_FITS)
def test_reference_fits_from_dask_equal_pandas(name: str, scheduler: str) -> None:
    expected = pandas_fit(name)
    model = dask_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit_mle(method=expected.method)
    assert fit.design.compressed is not None
    assert fit.nobs == expected.nobs
    assert fit.design.compressed.scheduler == scheduler
    _close(fit.fixef, expected.fixef)
    # standard errors are curvatures at θ̂, which carries the optimiser's resolution
    _close(fit.fixef_se, expected.fixef_se, tolerance=THETA_TOLERANCE)
    # θ holds SDs relative to σ: on the boundary (θ = 0) the scale is that of σ itself
    theta_scale = max(float(np.max(np.abs(expected.theta))), 1.0)
    assert np.max(np.abs(fit.theta - expected.theta)) <= THETA_TOLERANCE * theta_scale
    _close(fit.sigma, expected.sigma)
    _close(fit.loglik, expected.loglik)
    for group, modes in expected.ranef.items():
        scale = float(np.max(np.abs(modes.to_numpy()))) or 1.0
        _close(fit.ranef[group], modes, scale=scale, tolerance=THETA_TOLERANCE)
    ours = fit.ranef_summary().set_index(["grpvar", "term", "grp"])
    theirs = expected.ranef_summary().set_index(["grpvar", "term", "grp"])
    _close(ours.loc[theirs.index, "se"], theirs["se"], tolerance=THETA_TOLERANCE)


@pytest.mark.parametrize("name", REFERENCE_FITS)
def test_satterthwaite_df_from_the_statistics_equal_the_rows(name: str) -> None:
    """lmerTest's numerical route on the statistics against the exact dense form on the rows."""
    expected = pandas_fit(name)
    fit = dask_fit_at_pandas_theta(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fit.fixef_table("satterthwaite")
        theirs = expected.fixef_table("satterthwaite")
    np.testing.assert_allclose(ours["se"], theirs["se"], rtol=1e-10)
    np.testing.assert_allclose(ours["df"], theirs["df"], rtol=1e-5)
    np.testing.assert_allclose(ours["p_value"], theirs["p_value"], rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("name", REFERENCE_FITS)
def test_at_one_theta_the_statistics_give_the_rows_numbers(name: str) -> None:
    """At the pandas fit's θ every estimate from the statistics is the rows' to round-off."""
    expected = pandas_fit(name)
    fit = dask_fit_at_pandas_theta(name)
    tight = 1e-10
    _close(fit.fixef, expected.fixef, tolerance=tight)
    _close(fit.fixef_se, expected.fixef_se, tolerance=tight)
    _close(fit.sigma, expected.sigma, tolerance=tight)
    _close(fit.loglik, expected.loglik, tolerance=tight)
    for group, modes in expected.ranef.items():
        scale = float(np.max(np.abs(modes.to_numpy()))) or 1.0
        _close(fit.ranef[group], modes, scale=scale, tolerance=tight)


@pytest.mark.parametrize(
    "name", ["sleepstudy_slope_reml", "penicillin_crossed_reml", "classroom_nested_reml"]
)
def test_empirical_bayes_from_dask_equals_pandas(name: str) -> None:
    with dask.config.set(scheduler="threads"):
        model = dask_model(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = model.fit_eb()
    formula, data, options, _ = _case(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = hm.Model(formula, data, **options).fit_eb()
    for a, b in zip(ours.means, expected.means, strict=True):
        _close(a, b)
    for a, b in zip(ours.sds, expected.sds, strict=True):
        _close(a, b)
    # the Kass–Steffey term differentiates the modes in θ by finite differences, which
    # magnify θ̂'s stopping resolution
    for a, b in zip(ours.extra_variances, expected.extra_variances, strict=True):
        _close(a, b, scale=max(float(np.max(np.abs(b))), 1e-12), tolerance=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "sleepstudy_slope_reml",
        "penicillin_crossed_reml",
        "classroom_nested_reml",
        "tlc_treatment_reml",
    ],
)
def test_marginal_posterior_density_and_gradient_equal_pandas(name: str) -> None:
    from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
    from hiermodels.bayes.priors import resolve_priors

    formula, data, options, _ = _case(name)
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = hm.Model(formula, data, **options).design
        roots = dask_model(name).design
    expected = GaussianMarginalDensity(rows, resolve_priors(rows, None))
    ours = GaussianMarginalDensity(roots, resolve_priors(roots, None))
    assert ours.ndim == expected.ndim
    rng = np.random.default_rng(16)
    for _ in range(4):
        x = rng.normal(scale=0.5, size=expected.ndim)
        value, gradient = ours.logp(x)
        value_rows, gradient_rows = expected.logp(x)
        assert value == pytest.approx(value_rows, rel=TOLERANCE)
        _close(gradient, gradient_rows)


def test_response_far_from_zero_keeps_its_digits() -> None:
    """Location invariance: ``y + 1e12`` from Dask equals pandas (and the shifted fit)."""
    sleep = hm.datasets.load("sleepstudy")
    data = sleep.assign(shifted=sleep["Reaction"] + 1e12)
    formula = "shifted ~ Days + (Days | Subject)"
    expected = hm.Model(formula, data).fit_mle()
    with dask.config.set(scheduler="threads"):
        fit = hm.Model(formula, dd.from_pandas(data, npartitions=4)).fit_mle()
    _close(fit.theta, expected.theta)
    _close(fit.sigma, expected.sigma)
    _close(fit.fixef["Days"], expected.fixef["Days"])
    _close(fit.fixef["Intercept"] - 1e12, expected.fixef["Intercept"] - 1e12, scale=250.0)


def test_row_level_outputs_are_dask_collections_equal_to_pandas() -> None:
    sleep = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    expected = hm.Model(formula, sleep).fit_mle()
    frame = dd.from_pandas(sleep, npartitions=4)
    with dask.config.set(scheduler="threads"):
        fit = hm.Model(formula, frame).fit_mle()
        fitted = fit.fitted()
        assert hasattr(fitted, "npartitions")
        _close(fitted.compute().sort_index(), expected.fitted(), scale=300.0)
        _close(fit.residuals().compute().sort_index(), expected.residuals(), scale=300.0)
        table = fit.predict(frame, interval="prediction").compute().sort_index()
    _close(table.to_numpy(), expected.predict(sleep, interval="prediction").to_numpy(), scale=300.0)


def _bernoulli_rows() -> pd.DataFrame:
    """cbpp's herd-period counts as one row per animal (1: incidence)."""
    cbpp = hm.datasets.load("cbpp")
    rows = []
    for record in cbpp.itertuples():
        for k in range(int(record.size)):
            rows.append((record.herd, record.period, int(k < record.incidence)))
    return pd.DataFrame(rows, columns=["herd", "period", "sick"])


def test_aggregated_bernoulli_glmm_equals_row_level_fit() -> None:
    data = _bernoulli_rows()
    formula = "sick ~ period + (1 | herd)"
    expected = hm.Model(formula, data, "bernoulli").fit_mle()
    with dask.config.set(scheduler="threads"):
        model = hm.Model(formula, dd.from_pandas(data, npartitions=5), "bernoulli")
        fit = model.fit_mle()
    assert model.design.compressed is not None
    assert model.design.compressed.n_cells == 56
    assert fit.nobs == expected.nobs == len(data)
    np.testing.assert_allclose(fit.fixef, expected.fixef, rtol=1e-6)
    np.testing.assert_allclose(fit.theta, expected.theta, rtol=1e-6)
    assert fit.loglik == pytest.approx(expected.loglik, rel=1e-9)
    assert fit.bic == pytest.approx(expected.bic, rel=1e-9)
    np.testing.assert_allclose(
        fit.ranef["herd"].to_numpy(), expected.ranef["herd"].to_numpy(), rtol=1e-5, atol=1e-7
    )


def test_aggregated_poisson_with_exposure_equals_row_level_fit() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    group = rng.integers(0, 30, n)
    dose = rng.integers(0, 3, n)
    exposure = rng.choice([1.0, 2.0, 5.0], n)
    effect = rng.normal(scale=0.4, size=30)
    counts = rng.poisson(exposure * np.exp(-0.5 + 0.3 * dose + effect[group]))
    data = pd.DataFrame({"y": counts, "dose": dose, "g": group, "log_exposure": np.log(exposure)})
    formula = "y ~ dose + (1 | g)"
    expected = hm.Model(formula, data, "poisson", offset="log_exposure").fit_mle()
    with dask.config.set(scheduler="threads"):
        model = hm.Model(
            formula, dd.from_pandas(data, npartitions=4), "poisson", offset="log_exposure"
        )
        fit = model.fit_mle()
    assert model.design.compressed is not None and model.design.compressed.n_cells <= 90
    np.testing.assert_allclose(fit.fixef, expected.fixef, rtol=1e-6)
    np.testing.assert_allclose(fit.theta, expected.theta, rtol=1e-6)
    assert fit.loglik == pytest.approx(expected.loglik, rel=1e-9)


def _replicate_statistics(design: object, responses: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Per replicate: Σy, Σ Days·y, every subject's Σy, and the residual sum of squares
    of y on the fixed and the random effects' columns, from the design's rows."""
    block = design.blocks[0]  # type: ignore[attr-defined]
    y = responses + design.response_shift * ones[None, :]  # type: ignore[attr-defined]
    X = design.X  # type: ignore[attr-defined]
    dummies = np.zeros((y.shape[1], 2 * block.n_levels))
    for term in range(2):
        dummies[np.arange(y.shape[1]), 2 * block.codes + term] = block.X[:, term]
    columns = np.hstack([X, dummies])
    fitted = columns @ np.linalg.lstsq(columns, y.T, rcond=None)[0]
    residual = np.sum(y * y, axis=1) - np.sum(y.T * fitted, axis=0)
    per_subject = y @ dummies[:, ::2]
    return np.column_stack([y @ ones, y @ X[:, 1], per_subject, residual])


def test_bootstrap_replicates_from_the_statistics_have_the_rows_law() -> None:
    """Responses drawn on root rows, with the residual row, give the statistics a refit
    reads — Σy, Σxy per column and level, the residual sum of squares — the law they
    have from the rows (the last is σ² χ² on n − 38 df either way)."""
    from hiermodels.mle.bootstrap import statistics_replicates
    from hiermodels.mle.simulate import simulate_responses

    formula = "Reaction ~ Days + (Days | Subject)"
    rows_fit = hm.Model(formula, hm.datasets.load("sleepstudy")).fit_mle()
    with dask.config.set(scheduler="threads"):
        frame = dd.from_pandas(hm.datasets.load("sleepstudy"), npartitions=3)
        fit = hm.Model(formula, frame).fit_mle(theta=rows_fit.theta)
    nsim = 4000
    rng = np.random.default_rng(11)
    design, responses = statistics_replicates(
        fit, simulate_responses(fit, nsim, random_seed=rng), rng
    )
    assert design.n_rows == fit.design.n_rows + 1 < rows_fit.nobs
    ours = _replicate_statistics(design, responses, design.ones)
    theirs = _replicate_statistics(
        rows_fit.design, simulate_responses(rows_fit, nsim, random_seed=12), np.ones(180)
    )
    standard_error = np.sqrt(theirs.var(axis=0) / nsim + ours.var(axis=0) / nsim)
    assert np.all(np.abs(ours.mean(axis=0) - theirs.mean(axis=0)) < 4.5 * standard_error)
    # variances of 4000 draws agree to about 2 × √(2/4000) ≈ 4.5%
    np.testing.assert_allclose(ours.var(axis=0), theirs.var(axis=0), rtol=0.12)


def test_bootstrap_from_the_statistics_refits_every_replicate() -> None:
    formula = "Reaction ~ Days + (Days | Subject)"
    with dask.config.set(scheduler="threads"):
        frame = dd.from_pandas(hm.datasets.load("sleepstudy"), npartitions=3)
        fit = hm.Model(formula, frame).fit_mle()
    rows_fit = hm.Model(formula, hm.datasets.load("sleepstudy")).fit_mle()
    boot = fit.bootstrap(300, random_seed=1, progressbar=False)
    rows_boot = rows_fit.bootstrap(300, random_seed=2, progressbar=False)
    assert boot.nsim == 300 and boot.draws.shape == rows_boot.draws.shape
    # the spread of the replicates is the sampling SD: the same law, within Monte Carlo error
    ratio = boot.draws.std() / rows_boot.draws.std()
    assert ratio.between(0.8, 1.25).all(), ratio


def test_unsupported_requests_name_the_problem() -> None:
    sleep = hm.datasets.load("sleepstudy")
    frame = dd.from_pandas(sleep, npartitions=2)
    with dask.config.set(scheduler="threads"):
        with pytest.raises(DesignError, match="needs its rows"):
            hm.Model("Reaction ~ Days + (1 | Subject)", frame, "gamma")
        with pytest.raises(DesignError, match="learns from the rows"):
            hm.Model("Reaction ~ center(Days) + (1 | Subject)", frame)
        with pytest.raises(DesignError, match="must be a column name"):
            hm.Model("Reaction ~ Days + (1 | Subject)", frame, weights=np.ones(180))
        fit = hm.Model("Reaction ~ Days + (Days | Subject)", frame).fit_mle()
        with pytest.raises(ValueError, match="summed cross products"):
            fit.simulate(10)
        with pytest.raises(ValueError, match="summed cross products only"):
            fit.fixef_table(ddf="kenward-roger")
        constant = dd.from_pandas(sleep.assign(flat=1.0), npartitions=2)
        with pytest.raises(DesignError, match="constant"):
            hm.Model("flat ~ Days + (1 | Subject)", constant)


def test_parquet_files_fit_as_the_frame(tmp_path: object) -> None:
    from pathlib import Path

    sleep = hm.datasets.load("sleepstudy")
    folder = Path(str(tmp_path)) / "sleep"
    folder.mkdir()
    frame = sleep.assign(extra=0.0)
    for k, start in enumerate(range(0, len(frame), 60)):
        frame.iloc[start : start + 60].to_parquet(folder / f"part{k}.parquet")
    with dask.config.set(scheduler="threads"):
        fit = hm.Model.from_parquet(str(folder), "Reaction ~ Days + (Days | Subject)").fit_mle()
    expected = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()
    _close(fit.fixef, expected.fixef)
    _close(fit.theta, expected.theta)
    assert fit.design.compressed is not None and fit.design.compressed.n_partitions == 3


def test_profile_intervals_from_dask_equal_pandas() -> None:
    sleep = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    expected = hm.Model(formula, sleep).fit_mle().confint()
    with dask.config.set(scheduler="threads"):
        ours = hm.Model(formula, dd.from_pandas(sleep, npartitions=3)).fit_mle().confint()
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-6)
