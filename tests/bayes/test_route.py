"""The sampling route: one decider, one runner per route, recorded in the fit."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels.bayes
import hiermodels.bayes.fit
from hiermodels.bayes import SamplingRoute, choose_route, fit_bayes
from hiermodels.bayes.draws import mean_response
from hiermodels.bayes.samplers import RUN_SETTINGS
from hiermodels.datasets import load
from hiermodels.design.design import Design, build_design
from hiermodels.design.families import get_family
from hiermodels.errors import SamplingWarning
from hiermodels.mle.response import log_binomial_coefficient

pytestmark = pytest.mark.xdist_group("bayes-route")

FULL = SamplingRoute.FULL_GRAPH
MARGINAL = SamplingRoute.MARGINAL_GRAPH
GAUSSIAN = SamplingRoute.GAUSSIAN_NATIVE
JOINT = SamplingRoute.JOINT_NATIVE
LAPLACE = SamplingRoute.LAPLACE_NATIVE

#: Short runs: the tests check which engine ran, not the posterior.
QUICK = {"draws": 30, "tune": 30, "chains": 1, "random_seed": 3, "progressbar": False}


def _data(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(6), 8)
    b = np.tile(np.arange(4), 12)
    x = rng.normal(size=a.size)
    eta = 0.4 + 0.3 * x + rng.normal(0, 0.5, 6)[a] + rng.normal(0, 0.3, 4)[b]
    return pd.DataFrame(
        {
            "y": eta + rng.normal(0, 0.5, a.size),
            "count": rng.poisson(np.exp(eta)),
            "x": x,
            "a": a.astype(str),
            "b": b.astype(str),
        }
    )


def _design(formula: str, family: str = "gaussian") -> Design:
    return build_design(formula, _data(), family)


DESIGNS = {
    "one factor": lambda: _design("y ~ x + (x | a)"),
    "crossed": lambda: _design("y ~ x + (1 | a) + (1 | b)"),
    "no groups": lambda: _design("y ~ x"),
    "poisson": lambda: _design("count ~ x + (1 | a)", "poisson"),
    "negative binomial": lambda: _design("count ~ x + (1 | a)", "negativebinomial"),
}

#: (design, options of fit_bayes, the route they take)
DECISIONS = [
    ("one factor", {}, GAUSSIAN),
    ("one factor", {"backend": "direct"}, GAUSSIAN),
    ("one factor", {"backend": "python"}, MARGINAL),
    ("one factor", {"backend": "numba"}, MARGINAL),
    ("one factor", {"sampler": "pymc"}, MARGINAL),
    ("one factor", {"marginalize": False}, FULL),
    ("one factor", {"fixed_values": {"sigma": 1.0}}, FULL),
    ("crossed", {}, GAUSSIAN),
    ("crossed", {"backend": "python"}, FULL),
    ("crossed", {"sampler": "pymc"}, FULL),
    ("crossed", {"marginalize": False}, FULL),
    ("no groups", {}, FULL),
    ("poisson", {}, JOINT),
    ("poisson", {"backend": "direct"}, JOINT),
    ("poisson", {"backend": "numba"}, FULL),
    ("poisson", {"sampler": "pymc"}, FULL),
    ("poisson", {"marginalize": False}, JOINT),
    ("poisson", {"fixed_values": {"beta": [0.4, 0.3]}}, FULL),
    ("poisson", {"integrate": "laplace"}, LAPLACE),
    ("poisson", {"integrate": "laplace", "backend": "direct"}, LAPLACE),
    ("negative binomial", {}, FULL),
]


@pytest.mark.parametrize(("name", "options", "route"), DECISIONS)
def test_choose_route_decides_for_every_design_and_option(
    name: str, options: dict, route: SamplingRoute
) -> None:
    assert choose_route(DESIGNS[name](), **options) is route


#: (design, options no route serves, the message that says why)
REFUSALS = [
    ("one factor", {"sampler": "stan"}, "sampler must be 'nutpie' or 'pymc'"),
    ("one factor", {"backend": "jax"}, "backend must be 'auto', 'direct', 'numba' or 'python'"),
    ("one factor", {"integrate": "quadrature"}, "integrate must be None or 'laplace'"),
    ("one factor", {"marginalize": True, "fixed_values": {"sigma": 1.0}}, "fixed_values are not"),
    ("one factor", {"backend": "direct", "sampler": "pymc"}, "backend='direct' samples"),
    ("one factor", {"backend": "direct", "marginalize": False}, "backend='direct' samples"),
    ("crossed", {"marginalize": True, "sampler": "pymc"}, "only by nutpie's direct backend"),
    ("poisson", {"marginalize": True}, "integrated out exactly only in gaussian models"),
    ("negative binomial", {"backend": "direct"}, "backend='direct' samples"),
    ("poisson", {"integrate": "laplace", "sampler": "pymc"}, "samples with nutpie's direct"),
    ("poisson", {"integrate": "laplace", "marginalize": True}, "takes neither marginalize"),
    ("one factor", {"integrate": "laplace"}, "gaussian models need no approximation"),
    ("negative binomial", {"integrate": "laplace"}, "not available for the negativebinomial"),
]


@pytest.mark.parametrize(("name", "options", "message"), REFUSALS)
def test_choose_route_refuses_what_no_route_serves(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_route(DESIGNS[name](), **options)


def test_fit_bayes_refuses_through_choose_route_before_sampling() -> None:
    with pytest.raises(ValueError, match="integrated out exactly only in gaussian models"):
        fit_bayes(DESIGNS["poisson"](), marginalize=True, **QUICK)


def _fit(design: Design, **options: object) -> hiermodels.bayes.BayesFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # 30 draws do not converge
        return fit_bayes(design, **QUICK, **options)


@pytest.fixture(scope="module")
def sleepstudy() -> Design:
    return build_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), "gaussian")


@pytest.fixture(scope="module")
def cbpp() -> Design:
    return build_design(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), "binomial"
    )


@pytest.mark.parametrize(
    ("model", "options", "route", "marginalized", "integrate"),
    [
        ("sleepstudy", {}, GAUSSIAN, True, None),
        ("sleepstudy", {"marginalize": False}, FULL, False, None),
        ("cbpp", {}, JOINT, False, None),
        ("cbpp", {"integrate": "laplace"}, LAPLACE, True, "laplace"),
    ],
)
def test_the_fit_records_the_route_that_ran(
    request: pytest.FixtureRequest,
    model: str,
    options: dict,
    route: SamplingRoute,
    marginalized: bool,
    integrate: str | None,
) -> None:
    design = request.getfixturevalue(model)
    fit = _fit(design, **options)
    assert fit.route is route
    assert fit.idata["posterior"].attrs["route"] == route.value
    assert SamplingRoute(fit.posterior.attrs["route"]) is route
    assert (fit.marginalized, fit.integrate) == (marginalized, integrate)
    # every route leaves the same posterior variables: the effects are drawn where integrated
    assert {"beta", "u_" + design.blocks[0].group} <= set(fit.posterior.data_vars)


def test_fit_bayes_runs_the_route_choose_route_names(
    monkeypatch: pytest.MonkeyPatch, sleepstudy: Design
) -> None:
    """``choose_route`` is the only decider: fit_bayes follows whatever it returns."""
    asked = []

    def full_graph(design: Design, **options: object) -> SamplingRoute:
        asked.append(options)
        return FULL

    monkeypatch.setattr(hiermodels.bayes.fit, "choose_route", full_graph)
    fit = _fit(sleepstudy)  # on its own, choose_route sends this model to GAUSSIAN_NATIVE
    assert fit.route is FULL and not fit.marginalized
    assert fit.idata["posterior"].attrs["route"] == "full_graph"
    assert asked == [
        {
            "sampler": "nutpie",
            "backend": "auto",
            "marginalize": None,
            "integrate": None,
            "fixed_values": None,
        }
    ]


def test_every_route_has_one_runner() -> None:
    assert set(hiermodels.bayes.fit.RUNNERS) == set(SamplingRoute)


def test_the_run_settings_advice_names_are_arguments_of_fit_bayes() -> None:
    assert set(RUN_SETTINGS) <= set(inspect.signature(fit_bayes).parameters)


def test_which_routes_integrate_the_effects_out() -> None:
    assert {r for r in SamplingRoute if r.integrates_effects} == {MARGINAL, GAUSSIAN, LAPLACE}


def test_old_names_warn_and_name_their_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    import hiermodels.bayes.sample as old_module
    import hiermodels.bayes.samplers
    from hiermodels.bayes.draws import linear_predictor

    with pytest.warns(DeprecationWarning, match="hiermodels.bayes.draws.linear_predictor"):
        from hiermodels.bayes.sample import linear_predictor as old_linear_predictor
    assert old_linear_predictor is linear_predictor
    with pytest.warns(DeprecationWarning, match="hiermodels.bayes.samplers.sample_pymc_model"):
        moved = old_module.sample_model
    assert moved is hiermodels.bayes.samplers.sample_pymc_model
    with pytest.raises(AttributeError, match="no attribute 'sample_graph'"):
        getattr(old_module, "sample_graph")  # noqa: B009
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from hiermodels.bayes.sample import fit_bayes as old_fit_bayes
    assert old_fit_bayes is fit_bayes

    calls = []
    monkeypatch.setattr(
        hiermodels.bayes.samplers, "sample_pymc_model", lambda *a, **k: calls.append((a, k))
    )
    with pytest.warns(DeprecationWarning, match="renamed sample_pymc_model"):
        hiermodels.bayes.sample_model("model", draws=10, chains=2)
    assert calls == [(("model",), {"draws": 10, "chains": 2})]


@pytest.mark.parametrize(
    ("trials", "successes"), [(10, 3), (1, 0), (1, 1), (0, 0), (50, 25), (200, 7)]
)
def test_log_binomial_coefficient(trials: int, successes: int) -> None:
    expected = math.log(math.comb(trials, successes))
    value = float(log_binomial_coefficient(trials, successes))
    assert value == pytest.approx(expected, rel=1e-13, abs=1e-15)


@pytest.mark.parametrize(
    ("family", "link", "mean"),
    [
        ("gaussian", "identity", lambda eta: eta),
        ("binomial", "logit", lambda eta: 1.0 / (1.0 + np.exp(-eta))),
        ("bernoulli", "probit", lambda eta: 0.5 * (1.0 + np.vectorize(math.erf)(eta / 2**0.5))),
        ("poisson", "log", np.exp),
        ("negativebinomial", "log", np.exp),
    ],
)
def test_mean_response_is_the_inverse_link(family: str, link: str, mean: object) -> None:
    eta = np.linspace(-4.0, 4.0, 17).reshape(1, 1, -1)
    np.testing.assert_allclose(
        mean_response(eta, get_family(family, link)), mean(eta), rtol=1e-14, atol=1e-15
    )
