"""Default priors follow the documented rule; overrides are checked and applied."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pymc as pm
import pytest
from scipy import special, stats

from hiermodels.bayes import Prior, Priors, build_pymc_model, default_priors, resolve_priors
from hiermodels.bayes.priors import POSITIVE_PARAMS
from hiermodels.design.design import Design, build_design
from hiermodels.design.families import get_family
from tests.bayes import simulate


def _same(prior: Prior, dist: str, **params: float) -> bool:
    """Same distribution and parameters up to floating-point rounding."""
    return (
        prior.dist == dist
        and prior.params.keys() == params.keys()
        and all(prior.params[k] == pytest.approx(v, rel=1e-12) for k, v in params.items())
    )


def test_gaussian_defaults_follow_the_rule(sleep_design: Design) -> None:
    """The rule of hiermodels.bayes.priors, recomputed from the sleepstudy columns."""
    y, days = sleep_design.y, sleep_design.X[:, 1]
    s, m = np.std(y, ddof=1), np.mean(y)
    sd_days = np.std(days, ddof=1)
    priors = default_priors(sleep_design)
    assert list(priors) == [
        "beta__Intercept",
        "beta__Days",
        "sigma",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject",
    ]
    widen = np.sqrt(1 + (np.mean(days) / sd_days) ** 2)
    assert _same(priors["beta__Intercept"], "Normal", mu=m, sigma=2.5 * s * widen)
    assert _same(priors["beta__Days"], "Normal", mu=0.0, sigma=2.5 * s / sd_days)
    assert _same(priors["sigma"], "HalfStudentT", nu=3.0, sigma=s)
    assert _same(priors["sd_Subject__Intercept"], "HalfStudentT", nu=3.0, sigma=s)
    assert _same(priors["sd_Subject__Days"], "HalfStudentT", nu=3.0, sigma=s / sd_days)
    assert _same(priors["corr_Subject"], "LKJCorr", eta=2.0)
    # sleepstudy: sd(Reaction) = 56.33, sd(Days) = 2.88
    assert s == pytest.approx(56.3288, abs=1e-4) and sd_days == pytest.approx(2.8803, abs=1e-4)


def test_glmm_defaults_use_the_link_scale() -> None:
    truth = simulate.bernoulli()
    design = build_design(truth.formula, truth.data, "bernoulli")
    x = truth.data["x"].to_numpy()
    p = truth.data["y"].mean()
    priors = default_priors(design)
    widen = np.sqrt(1 + (np.mean(x) / np.std(x, ddof=1)) ** 2)
    assert _same(priors["beta__Intercept"], "Normal", mu=special.logit(p), sigma=2.5 * widen)
    assert _same(priors["beta__x"], "Normal", mu=0.0, sigma=2.5 / np.std(x, ddof=1))
    assert _same(priors["sd_g__Intercept"], "HalfStudentT", nu=3.0, sigma=1.0)
    assert "sigma" not in priors

    probit = build_design(truth.formula, truth.data, get_family("bernoulli", "probit"))
    assert default_priors(probit)["beta__Intercept"].params["mu"] == pytest.approx(
        stats.norm.ppf(p)
    )
    nb = simulate.negativebinomial()
    nb_priors = default_priors(build_design(nb.formula, nb.data, "negativebinomial"))
    assert _same(nb_priors["alpha"], "Gamma", alpha=0.01, beta=0.01)
    assert nb_priors["beta__Intercept"].params["mu"] == pytest.approx(np.log(nb.data["y"].mean()))


def test_binomial_location_is_the_pooled_proportion() -> None:
    truth = simulate.binomial()
    design = build_design(truth.formula, truth.data, "binomial")
    pooled = truth.data["s"].sum() / (truth.data["s"] + truth.data["f"]).sum()
    assert default_priors(design)["beta__Intercept"].params["mu"] == pytest.approx(
        special.logit(pooled)
    )


def test_beta_override_applies_to_every_coefficient_and_per_coefficient_wins(
    sleep_design: Design,
) -> None:
    resolved = resolve_priors(
        sleep_design,
        {
            "beta": Prior("Normal", mu=0, sigma=100),
            "beta__Days": Prior("Normal", mu=10, sigma=5),
            "sigma": Prior("HalfNormal", sigma=50),
        },
    )
    assert resolved["beta__Intercept"] == Prior("Normal", mu=0, sigma=100)
    assert resolved["beta__Days"] == Prior("Normal", mu=10, sigma=5)
    model = build_pymc_model(sleep_design, resolved)
    logp = pm.logp(model["sigma"], 20.0).eval()
    assert logp == pytest.approx(stats.halfnorm.logpdf(20.0, scale=50))
    beta_logp = pm.logp(model["beta"], np.array([250.0, 10.0])).eval()
    expected = [stats.norm.logpdf(250, 0, 100), stats.norm.logpdf(10, 10, 5)]
    np.testing.assert_allclose(beta_logp, expected)


def test_mixed_coefficient_priors_give_one_variable_each(sleep_design: Design) -> None:
    model = build_pymc_model(sleep_design, {"beta__Days": Prior("StudentT", nu=4, mu=0, sigma=20)})
    free = {rv.name for rv in model.free_RVs}
    assert {"beta__Intercept", "beta__Days"} <= free and "beta" not in free
    assert model.named_vars_to_dims["beta"] == ("coef",)


def test_lkj_alias_and_eta(sleep_design: Design) -> None:
    resolved = resolve_priors(sleep_design, {"corr_Subject": Prior("LKJ", eta=4)})
    assert resolved["corr_Subject"] == Prior("LKJCorr", eta=4.0)
    model = build_pymc_model(sleep_design, resolved)
    draws = pm.draw(model["corr_Subject"], draws=3000, random_seed=2)[:, 0, 1]
    assert np.var(draws) == pytest.approx(1 / 9, abs=0.012)  # 1 / (2 eta + 1)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (
            {"sd_Subject": Prior("HalfNormal", sigma=1)},
            ValueError,
            "prior keyed by unknown variable(s) ['sd_Subject']; valid keys: beta, beta__Intercept, "
            "beta__Days, sigma, sd_Subject__Intercept, sd_Subject__Days, corr_Subject",
        ),
        (
            {"sigma": Prior("Normal", mu=0, sigma=1)},
            ValueError,
            "prior 'Normal' does not fit 'sigma'; choose one of:",
        ),
        (
            {"beta__Days": Prior("HalfNormal", sigma=1)},
            ValueError,
            "prior 'HalfNormal' does not fit 'beta__Days'",
        ),
        ({"corr_Subject": Prior("LKJCorr", n=2)}, ValueError, "eta=<positive number>"),
        (
            {"sigma": Prior("HalfNormal", sgma=1)},
            ValueError,
            "invalid parameters for prior 'sigma'",
        ),
        ({"sigma": 3.0}, TypeError, "prior for 'sigma' must be a Prior"),
    ],
)
def test_bad_overrides_are_named(
    sleep_design: Design, overrides: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        resolve_priors(sleep_design, overrides)


def test_prior_spec_is_checked_and_immutable() -> None:
    with pytest.raises(ValueError, match="unknown PyMC distribution 'Normel'"):
        Prior("Normel", mu=0)
    with pytest.raises(ValueError, match="must be a finite number"):
        Prior("Normal", mu=np.inf)
    prior = Prior("Normal", mu=0, sigma=1)
    assert repr(prior) == "Prior('Normal', mu=0.0, sigma=1.0)"
    with pytest.raises(TypeError):
        prior.params["mu"] = 3  # type: ignore[index]
    assert Priors({"sigma": prior})["sigma"] is prior
    with pytest.raises(TypeError, match="must be a Prior"):
        Priors({"sigma": "Normal"})  # type: ignore[dict-item]


POSITIVE = [(dist, key) for dist, keys in sorted(POSITIVE_PARAMS.items()) for key in keys]


@pytest.mark.parametrize(("dist", "key"), POSITIVE)
@pytest.mark.parametrize("value", [0, -1, -1e-300])
def test_non_positive_scales_and_shapes_are_refused(dist: str, key: str, value: float) -> None:
    message = f"Prior({dist!r}): parameter {key}={value:g} is out of range; "
    message += f"{dist}'s {key} must be > 0 (allowed range: 0 < {key} < inf)"
    with pytest.raises(ValueError, match=re.escape(message)):
        Prior(dist, **{key: value})


@pytest.mark.parametrize(("dist", "key"), POSITIVE)
def test_each_positive_parameter_is_a_real_parameter_of_the_distribution(
    dist: str, key: str
) -> None:
    # a misspelt name in the table would never be checked
    signature = inspect.signature(getattr(pm, dist).dist)
    assert key in signature.parameters


@pytest.mark.parametrize(
    ("dist", "params"),
    [
        ("Normal", {"mu": -5.0, "sigma": 2.0}),
        ("SkewNormal", {"mu": 0.0, "sigma": 1.0, "alpha": -3.0}),
        ("Cauchy", {"alpha": -1.0, "beta": 2.0}),
        ("Gumbel", {"mu": -2.0, "beta": 1.0}),
        ("LogNormal", {"mu": -1.0, "sigma": 0.5}),
    ],
)
def test_location_and_skew_parameters_may_be_negative(dist: str, params: dict) -> None:
    assert dict(Prior(dist, **params).params) == params


def test_a_non_number_parameter_names_the_prior() -> None:
    with pytest.raises(ValueError, match=re.escape("Prior('HalfNormal'): parameter sigma='abc'")):
        Prior("HalfNormal", sigma="abc")


def test_a_bad_prior_scale_fails_before_sampling(sleep_design: Design) -> None:
    from hiermodels.bayes.fit import fit_bayes

    with pytest.raises(ValueError, match=re.escape("parameter sigma=-1 is out of range")):
        fit_bayes(sleep_design, priors={"sigma": Prior("HalfNormal", sigma=-1)}, draws=10)


def test_group_term_layout_is_a_deprecated_spelling_of_design_factors(sleep_design: Design) -> None:
    from hiermodels.bayes.priors import group_term_layout

    with pytest.warns(DeprecationWarning, match=r"design\.factors"):
        layout = group_term_layout(sleep_design)
    assert layout is sleep_design.factors
