"""The Laplace-integrated GLMM density: likelihood, gradient, mode and effect draws.

References: the engine's Laplace deviance (consistency), central differences
(gradients), glmmTMB's exact Laplace fits and lme4's conditional modes and
variances (``tests/reference``), and the random-effects system ``H`` built
densely from the design.
"""

from __future__ import annotations

import inspect
import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import optimize, special

from hiermodels.bayes.build import build_pymc_model
from hiermodels.bayes.integrated import integrated_effects
from hiermodels.bayes.laplace_density import (
    LaplaceDensity,
    LaplaceLikelihood,
    check_laplace_family,
)
from hiermodels.bayes.priors import Prior, Priors, resolve_priors
from hiermodels.datasets import load
from hiermodels.design.design import Design, build_design
from hiermodels.design.families import get_family
from hiermodels.mle.laplace import laplace_deviance
from tests.bayes import simulate
from tests.bayes.noise import ScriptedNormals
from tests.reference.lme4_names import load_reference, term_to_lme4

TMB_DIR = Path(__file__).parents[1] / "reference" / "glmmTMB"

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)"


def _bernoulli_slope(seed: int = 5) -> pd.DataFrame:
    """30 groups x 25 rows, bernoulli, correlated intercept and slope (SDs 0.7, 0.5, r 0.4)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 25)
    x = rng.normal(size=g.size)
    cov = np.array([[0.49, 0.14], [0.14, 0.25]])
    u = rng.multivariate_normal(np.zeros(2), cov, size=30)
    eta = -0.3 + 0.8 * x + u[g, 0] + u[g, 1] * x
    y = (rng.random(g.size) < special.expit(eta)).astype(int)
    return pd.DataFrame({"g": [f"g{k:02d}" for k in g], "x": x, "y": y})


@cache
def design(name: str) -> Design:
    """The designs under test, built once."""
    if name == "cbpp":
        return build_design(CBPP, load("cbpp"), get_family("binomial"))
    if name == "grouseticks":
        return build_design(GROUSE, load("grouseticks"), get_family("poisson"))
    if name == "bernoulli_slope":
        return build_design("y ~ x + (x | g)", _bernoulli_slope(), get_family("bernoulli"))
    if name == "poisson_slope":
        truth = simulate.poisson_slope()
        return build_design(truth.formula, truth.data, get_family("poisson"))
    if name == "bernoulli_probit":
        truth = simulate.bernoulli(seed=25, link="probit")
        return build_design(truth.formula, truth.data, get_family("bernoulli", "probit"))
    if name == "poisson_three_terms":
        truth = simulate.poisson_slope()
        data = truth.data.assign(w=np.random.default_rng(9).normal(size=len(truth.data)))
        return build_design("y ~ x + w + (x + w | g)", data, get_family("poisson"))
    if name == "poisson_uncorrelated":
        truth = simulate.poisson_slope()
        return build_design("y ~ x + (x || g)", truth.data, get_family("poisson"))
    raise KeyError(name)


GRADIENT_CASES = [
    "cbpp",
    "grouseticks",
    "bernoulli_slope",
    "poisson_slope",
    "bernoulli_probit",
    "poisson_uncorrelated",
]


def _random_point(lik: LaplaceLikelihood, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A random ``(theta, beta)``: SDs in (0.3, 1.5), correlations in (-0.6, 0.6)."""
    factors = []
    for block in lik.design.blocks:
        q = block.n_terms
        sd = rng.uniform(0.3, 1.5, q)
        corr = np.eye(q)
        if q == 2:
            corr[0, 1] = corr[1, 0] = rng.uniform(-0.6, 0.6)
        factors.append(sd[:, None] * np.linalg.cholesky(corr))
    beta = rng.normal(0.0, 0.5, lik.n_beta)
    beta[0] += -1.0 if lik.design.family.is_binomial else 0.5
    return lik.theta(factors), beta


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_loglik_is_minus_half_the_engines_laplace_deviance(name: str) -> None:
    lik = LaplaceLikelihood(design(name))
    engine = laplace_deviance(design(name))
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta, beta = _random_point(lik, rng)
        value, _, _ = lik.value_and_gradient(theta, beta)
        assert value == pytest.approx(-0.5 * engine(np.concatenate([theta, beta])), rel=1e-12)


@pytest.mark.parametrize("name", ["cbpp", "grouseticks"])
def test_loglik_at_the_fit_is_the_fits_loglik(name: str) -> None:
    # the fit optimises on a standardised design: the same number in other coordinates
    import hiermodels as hm

    formula, family = (CBPP, "binomial") if name == "cbpp" else (GROUSE, "poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model(formula, load(name), family=family).fit_mle()
    lik = LaplaceLikelihood(design(name))
    value, _, _ = lik.value_and_gradient(fit.theta, fit.beta)
    assert value == pytest.approx(fit.loglik, abs=1e-8)


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradient_matches_central_differences(name: str) -> None:
    lik = LaplaceLikelihood(design(name))
    rng = np.random.default_rng(2)
    for _ in range(2):
        theta, beta = _random_point(lik, rng)
        x = np.concatenate([theta, beta])
        _, g_theta, g_beta = lik.value_and_gradient(theta, beta)
        grad = np.concatenate([g_theta, g_beta])

        def value(point: np.ndarray) -> float:
            return lik.value_and_gradient(point[: lik.n_theta], point[lik.n_theta :])[0]

        # PIRLS stops within ~1e-9 of the mode's deviance: a step of 1e-4 keeps that
        # noise and the truncation error (~h^2) both near 1e-9 of the slopes
        fd = np.empty_like(x)
        for i in range(x.size):
            h = 1e-4 * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (value(up) - value(down)) / (2.0 * h)
        scale = np.max(np.abs(grad))
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * scale)


def test_failure_is_minus_infinity_with_a_zero_gradient() -> None:
    lik = LaplaceLikelihood(design("cbpp"))
    # an SD of 1e300 overflows the random-effects system
    value, g_theta, g_beta = lik.value_and_gradient(np.array([1e300]), np.zeros(4))
    assert value == -np.inf
    assert not np.any(g_theta) and not np.any(g_beta)


def _tmb(name: str) -> dict:
    return json.loads((TMB_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "reference"),
    [("cbpp", "cbpp_binomial_laplace"), ("grouseticks", "grouseticks_poisson_laplace")],
)
def test_flat_prior_mode_is_the_exact_laplace_fit(name: str, reference: str) -> None:
    # with flat priors on (theta, beta) the posterior mode is the maximum of the Laplace
    # likelihood: glmmTMB's estimates (it evaluates the same approximation exactly)
    lik = LaplaceLikelihood(design(name))
    d = design(name)

    def minus(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, g_theta, g_beta = lik.value_and_gradient(x[: lik.n_theta], x[lik.n_theta :])
        return -value, -np.concatenate([g_theta, g_beta])

    start = np.concatenate([np.ones(lik.n_theta), np.zeros(lik.n_beta)])
    bounds = [(0.0, None)] * lik.n_theta + [(None, None)] * lik.n_beta
    found = optimize.minimize(
        minus, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"gtol": 1e-9}
    )
    ref = _tmb(reference)
    theta, beta = found.x[: lik.n_theta], found.x[lik.n_theta :]
    factors = lik.block_factors(theta)
    sds = {block.group: t[0, 0] for block, t in zip(d.blocks, factors, strict=True)}
    for group, value in ref["sd"].items():
        assert sds[group] == pytest.approx(value, rel=1e-4), group
    for coef, value in zip(d.fixed_names, beta, strict=True):
        assert value == pytest.approx(ref["fixef"][term_to_lme4(coef)], rel=1e-4, abs=1e-6)
    assert -found.fun == pytest.approx(ref["logLik"], abs=1e-4)


def _dense_spherical_system(lik: LaplaceLikelihood, theta: np.ndarray, eta: np.ndarray):
    """``Z Lambda`` (columns in PIRLS's order of ``u``) and ``H``, built densely."""
    layout = lik.deviance.layout
    factors = layout.theta.factors(theta)
    n = lik.design.nobs
    columns = []
    lead_x = layout.lead_X @ layout.lead_factor(factors)
    for level in range(layout.n_lead_levels):
        rows = layout.lead_codes == level
        for j in range(layout.q_lead):
            columns.append(np.where(rows, lead_x[:, j], 0.0))
    for k in layout.rest:
        block = layout.blocks[k]
        x = block.X @ factors[k]
        for level in range(block.n_levels):
            rows = block.codes == level
            for j in range(block.n_terms):
                columns.append(np.where(rows, x[:, j], 0.0))
    z_lambda = np.column_stack(columns) if columns else np.zeros((n, 0))
    _, weights, _ = lik.deviance.response.working(eta)
    h = z_lambda.T @ (z_lambda * weights[:, None]) + np.eye(z_lambda.shape[1])
    return z_lambda, h


def _linear_predictor_share(d: Design, effects: list[np.ndarray]) -> np.ndarray:
    """``Z b``: the effects' share of the linear predictor, from each block's ``(levels, q)``."""
    out = np.zeros(d.nobs)
    for block, b in zip(d.blocks, effects, strict=True):
        out += np.einsum("iq,iq->i", np.asarray(block.X, dtype=float), b[block.codes])
    return out


@pytest.mark.parametrize("name", ["cbpp", "grouseticks", "bernoulli_slope", "bernoulli_probit"])
def test_draws_have_the_gaussian_approximations_covariance(name: str) -> None:
    # a draw is u~ + L^-T eps: zero noise gives the mode, unit noises the columns of L^-T;
    # on the linear predictor, Z Lambda u has mean Z Lambda u~ and covariance
    # Z Lambda H^-1 Lambda' Z'
    d = design(name)
    density = LaplaceDensity(d, resolve_priors(d))
    lik = LaplaceLikelihood(d)
    x = density.initial_point(4)
    at_mode, factors = density.draw_effects(x, ScriptedNormals(None))
    theta = lik.theta(factors)
    result = lik.mode(theta, np.asarray(density.expand(x)["beta"]))
    z_lambda, h = _dense_spherical_system(lik, theta, result.eta)
    # the mode: the penalised score vanishes there
    u = np.concatenate([result.u_lead.ravel(), result.u_rest])
    _, weights, resid = lik.deviance.response.working(result.eta)
    score = z_lambda.T @ (weights * resid) - u
    assert np.max(np.abs(score)) < 1e-6 * max(1.0, np.max(np.abs(z_lambda.T @ (weights * resid))))
    mean = _linear_predictor_share(d, at_mode)
    np.testing.assert_allclose(mean, z_lambda @ u, rtol=1e-7, atol=1e-9)
    columns = np.column_stack(
        [
            _linear_predictor_share(d, density.draw_effects(x, ScriptedNormals(k))[0]) - mean
            for k in range(h.shape[0])
        ]
    )
    expected = z_lambda @ np.linalg.solve(h, z_lambda.T)
    np.testing.assert_allclose(columns @ columns.T, expected, rtol=1e-8, atol=1e-10)


def _posterior(d: Design, values: dict[str, object], draws: int) -> xr.Dataset:
    """A posterior of ``draws`` identical draws (one chain) at the given values."""
    data = {}
    for key, value in values.items():
        array = np.asarray(value, dtype=float)
        dims = ["chain", "draw"] + (["coef"] if key == "beta" else [])
        data[key] = (dims, np.broadcast_to(array, (1, draws, *array.shape)).copy())
    coords = {"chain": [0], "draw": np.arange(draws), "coef": list(d.fixed_names)}
    return xr.Dataset(data, coords=coords)


@pytest.mark.parametrize(
    ("name", "reference"),
    [("cbpp", "cbpp_binomial_laplace"), ("grouseticks", "grouseticks_poisson_laplace")],
)
def test_effect_draws_centre_on_lme4s_modes_with_its_conditional_sds(
    name: str, reference: str
) -> None:
    d = design(name)
    ref = load_reference(reference)
    beta = [ref["fixef"][term_to_lme4(c)] for c in d.fixed_names]
    sds = {row["grp"]: row["sdcor"] for row in ref["varcorr"]}
    values: dict[str, object] = {"beta": beta}
    values.update({f"sd_{g}__Intercept": sd for g, sd in sds.items()})
    draws = 6000
    density = LaplaceDensity(d, resolve_priors(d))
    effects = integrated_effects(_posterior(d, values, draws), d, density, np.random.default_rng(5))
    ranef = pd.DataFrame(ref["ranef"]).assign(grp=lambda f: f["grp"].astype(str))
    for group, sd in sds.items():
        u = effects[f"u_{group}"].isel(chain=0).sel({f"{group}__term": "Intercept"})
        z = effects[f"z_{group}"].isel(chain=0).sel({f"{group}__term": "Intercept"})
        np.testing.assert_allclose(u.values, sd * z.values, rtol=1e-12)
        expected = ranef[ranef["grpvar"] == group].set_index("grp").loc[list(u[group].values)]
        # Monte-Carlo error of a mean: condsd / sqrt(6000) ~ 0.013 condsd; of an SD ~ 0.9%;
        # glmer's stale weights move its numbers by ~1e-3 sd (test_glmm_reference)
        mean, spread = u.mean("draw").values, u.std("draw").values
        np.testing.assert_array_less(
            np.abs(mean - expected["condval"]), 4.5 * expected["condsd"] / np.sqrt(draws)
        )
        np.testing.assert_allclose(spread, expected["condsd"], rtol=0.045)


def test_effect_arrays_are_named_as_in_the_full_graph() -> None:
    d = design("bernoulli_slope")
    values = {
        "beta": [-0.3, 0.8],
        "sd_g__Intercept": 0.7,
        "sd_g__x": 0.5,
        "corr_g": np.array([[1.0, 0.4], [0.4, 1.0]]),
    }
    posterior = _posterior(d, {k: v for k, v in values.items() if k != "corr_g"}, 3)
    corr = np.broadcast_to(values["corr_g"], (1, 3, 2, 2)).copy()
    posterior["corr_g"] = (("chain", "draw", "g__term", "g__term_bis"), corr)
    posterior = posterior.assign_coords(
        {"g__term": ["Intercept", "x"], "g__term_bis": ["Intercept", "x"]}
    )
    density = LaplaceDensity(d, resolve_priors(d))
    effects = integrated_effects(posterior, d, density, np.random.default_rng(6))
    model = build_pymc_model(d)
    for name in ("z_g", "u_g"):
        assert effects[name].dims == ("chain", "draw", *model.named_vars_to_dims[name])
        for dim in model.named_vars_to_dims[name]:
            assert list(effects[name][dim].values) == list(model.coords[dim])
    # u = z @ chol' * sd, block by block, as the graph's Deterministic
    chol = np.linalg.cholesky(values["corr_g"]) * np.array([0.7, 0.5])[:, None]
    z, u = effects["z_g"].values, effects["u_g"].values
    np.testing.assert_allclose(u, z @ chol.T, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("family", "message"),
    [("gaussian", "integrated out exactly"), ("negativebinomial", "integrate=None")],
)
def test_families_without_the_approximation_are_refused(family: str, message: str) -> None:
    truth = simulate.negativebinomial()
    d = build_design(truth.formula, truth.data, get_family(family))
    with pytest.raises(ValueError, match=message):
        check_laplace_family(d)


# -- the density on the graph's coordinates ----------------------------------------------

#: design, prior overrides
DENSITY_CASES = {
    "cbpp": ("cbpp", {}),
    "grouseticks": ("grouseticks", {}),
    "correlated slope": ("bernoulli_slope", {}),
    "independent slope": ("poisson_uncorrelated", {}),
    "probit": ("bernoulli_probit", {}),
    "three correlated terms": ("poisson_three_terms", {}),
    "other priors": (
        "bernoulli_slope",
        {
            "beta__x": Prior("StudentT", nu=4.0, mu=0.0, sigma=2.0),
            "sd_g__Intercept": Prior("Exponential", lam=0.5),
            "sd_g__x": Prior("Gamma", alpha=2.0, beta=1.0),
            "corr_g": Prior("LKJCorr", eta=4.0),
        },
    ),
}


def _pymc_point(model: object, values: dict[str, object]) -> dict[str, np.ndarray]:
    """The PyMC model's unconstrained point for the given variable values."""
    point = {}
    for rv in model.free_RVs:  # type: ignore[attr-defined]
        name = rv.name
        if name.startswith("beta__"):
            coef = list(model.coords["coef"]).index(name.removeprefix("beta__"))  # type: ignore[attr-defined]
            constrained = np.asarray(values["beta"])[coef]
        elif np.ndim(values.get(name)) == 2:  # an LKJ Cholesky factor, q >= 3
            constrained = np.asarray(values[name], dtype=float)
        elif name.endswith("__raw"):
            constrained = (np.asarray(values[name.removesuffix("__raw")])[0, 1] + 1.0) / 2.0
        else:
            constrained = np.asarray(values[name], dtype=float)
        transform = model.rvs_to_transforms[rv]  # type: ignore[attr-defined]
        if transform is not None:
            constrained = transform.forward(constrained, *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = np.asarray(constrained, dtype=float)  # type: ignore[attr-defined]
    return point


def _non_centred_graph(d: Design, priors: Priors) -> object:
    """The full graph with ``z_<g>`` the free variables (``u = T z``)."""
    if "centered" in inspect.signature(build_pymc_model).parameters:
        return build_pymc_model(d, priors, centered=False)
    return build_pymc_model(d, priors)


@pytest.mark.parametrize("case", list(DENSITY_CASES))
def test_density_is_the_laplace_integral_of_the_full_graph(case: str) -> None:
    # log of the Laplace approximation to the integral over z of the full graph's density:
    # PyMC's logp at z = the mode, + q/2 log(2 pi) - 1/2 log|H| (a Gaussian integral)
    name, overrides = DENSITY_CASES[case]
    d = design(name)
    priors = resolve_priors(d, overrides)
    density = LaplaceDensity(d, priors)
    model = _non_centred_graph(d, priors)
    # the same coordinates in the same order, less z (beta's may be one vector or several)
    graph = [
        v.name.split("_log")[0].removesuffix("_cholesky_corr__")
        for v in model.value_vars
        if not v.name.startswith(("z_", "beta"))
    ]
    assert graph == [n for n in density.output_names if n.startswith("sd_") or "__raw" in n]
    sizes = [np.size(model.initial_point()[v.name]) for v in model.value_vars]
    names = [v.name for v in model.value_vars]
    assert density.ndim == sum(
        n for v, n in zip(names, sizes, strict=True) if not v.startswith("z_")
    )
    logp = model.compile_logp()
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = density.initial_point(int(rng.integers(1_000_000)))
        state = density.expand(x)
        np.testing.assert_allclose(density.unconstrain(state), x, rtol=1e-12, atol=1e-12)
        lik = LaplaceLikelihood(d)
        at_mode, factors = density.draw_effects(x, ScriptedNormals(None))
        theta = lik.theta(factors)
        result = lik.mode(theta, np.asarray(state["beta"]))
        values = dict(state)
        for group in {block.group for block in d.blocks}:
            # b = z T' per level, block by block, the factor's blocks side by side
            parts = [
                np.linalg.solve(t, b.T).T
                for block, b, t in zip(d.blocks, at_mode, factors, strict=True)
                if block.group == group
            ]
            values[f"z_{group}"] = np.hstack(parts)
        q = result.u_lead.size + result.u_rest.size
        expected = float(logp(_pymc_point(model, values)))
        expected += 0.5 * q * np.log(2.0 * np.pi) - 0.5 * result.factor.logdet()
        # PyMC keeps some constants as float32 literals; the engine holds probabilities
        # 1e-10 away from 0 and 1 (a probit's |eta| > 6.4 at these jittered starts)
        assert density.logp(x)[0] == pytest.approx(expected, rel=1e-8, abs=1e-6)


@pytest.mark.parametrize("case", list(DENSITY_CASES))
def test_density_gradient_matches_central_differences(case: str) -> None:
    name, overrides = DENSITY_CASES[case]
    density = LaplaceDensity(design(name), resolve_priors(design(name), overrides))
    rng = np.random.default_rng(8)
    for _ in range(2):
        x = density.initial_point(int(rng.integers(1_000_000)))
        _, grad = density.logp(x)
        fd = np.empty_like(x)
        for i in range(x.size):
            h = 1e-4 * max(1.0, abs(x[i]))
            up, down = x.copy(), x.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (density.logp(up)[0] - density.logp(down)[0]) / (2.0 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.max(np.abs(grad)))


def test_density_outside_the_support_is_minus_infinity() -> None:
    density = LaplaceDensity(design("cbpp"), resolve_priors(design("cbpp")))
    x = density.initial_point(1)
    x[-1] = 800.0  # log sd: exp overflows
    value, grad = density.logp(x)
    assert value == -np.inf and not np.any(grad)


def test_density_depends_on_the_point_alone() -> None:
    # nutpie's chains share one native function: no state (a warm start) may carry over
    density = LaplaceDensity(design("grouseticks"), resolve_priors(design("grouseticks")))
    x, elsewhere = density.initial_point(2), density.initial_point(3) + 1.0
    value, grad = density.logp(x)
    density.logp(elsewhere)
    again, grad_again = density.logp(x)
    assert again == value
    np.testing.assert_array_equal(grad_again, grad)


def test_density_outputs_match_the_graphs_names() -> None:
    d = design("bernoulli_slope")
    density = LaplaceDensity(d, resolve_priors(d))
    model = build_pymc_model(d)
    state = density.expand(density.initial_point(3))
    assert set(state) == set(density.output_names)
    for name, shape in zip(density.output_names, density.output_shapes, strict=True):
        assert np.shape(state[name]) == shape
        assert name in model.named_vars
    for name, dims in density.output_dims.items():
        assert list(model.named_vars_to_dims[name]) == dims
        for dim in dims:
            assert density.coords[dim] == [str(c) for c in model.coords[dim]]
