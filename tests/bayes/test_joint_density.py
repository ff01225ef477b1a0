"""The compiled joint density of a GLMM against the PyMC graph and differences of itself.

:class:`JointDensity` must be the log density of the free variables of the
graph of ``build_pymc_model`` (same variables, same unconstrained
coordinates, constants included) plus the exact log-likelihood at random
points, and its gradient must match differences of it.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from hiermodels.bayes.build import build_pymc_model
from hiermodels.bayes.joint_density import JointDensity, supports_joint_density
from hiermodels.bayes.priors import resolve_priors
from hiermodels.design.design import Design, build_design
from hiermodels.design.families import get_family

#: name -> (formula, family)
STRUCTURES = {
    "binomial-trials": ("cbind(k, m - k) ~ x + (1 | a)", "binomial"),
    "poisson-crossed-slopes": ("c ~ x + (x | a) + (1 | b)", "poisson"),
    "bernoulli-probit-uncorrelated": ("s ~ x + (x || a) + (1 | b)", "bernoulli"),
    "poisson-three-terms-offset": ("c ~ x + (x + w | a)", "poisson"),
}


@cache
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261130)
    n = 200
    a = rng.integers(0, 12, n)
    data = pd.DataFrame(
        {
            "a": a.astype(str),
            "b": rng.integers(0, 5, n).astype(str),
            "x": rng.normal(1.0, 1.0, n),
            "w": rng.normal(size=n),
            "o": rng.normal(0.0, 0.1, n),
        }
    )
    eta = -0.3 + 0.4 * data.x + rng.normal(0.0, 0.5, 12)[a]
    data["m"] = rng.integers(1, 9, n)
    data["k"] = rng.binomial(data.m, 1.0 / (1.0 + np.exp(-eta)))
    data["c"] = rng.poisson(np.exp(eta))
    data["s"] = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return data


@cache
def design_of(name: str) -> Design:
    formula, family = STRUCTURES[name]
    link = "probit" if "probit" in name else None
    offset = "o" if "offset" in name else None
    return build_design(formula, frame(), get_family(family, link), offset=offset)


def graph_log_prior(design: Design, density: JointDensity, x: np.ndarray) -> float:
    """The PyMC graph's log density of its free variables (``z`` included) at ``x``."""
    model = build_pymc_model(design, resolve_priors(design), centered=density.centered)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logp = model.compile_logp(vars=model.free_RVs, jacobian=True)
    point = model.initial_point()
    position = 0
    for name, value in point.items():
        if name.startswith(("z_", "u_")):
            continue
        point[name] = np.asarray(x[position : position + value.size]).reshape(value.shape)
        position += value.size
    assert position == density.n_hyper
    effects = density.effects(x)
    for group in design.factors:
        centred = density.centered.get(group.group, False)
        parts = [
            pair[1 if centred else 0]
            for pair, b in zip(effects, design.blocks, strict=True)
            if b.group == group.group
        ]
        point[f"{'u' if centred else 'z'}_{group.group}"] = np.hstack(parts)
    return float(logp(point))


def exact_loglik(design: Design, density: JointDensity, x: np.ndarray) -> float:
    """``Σ log p(y | η)`` by scipy, ``η`` from the expanded ``beta`` and effects.

    (PyTensor's ``erfc`` is off by up to 1e-9 relative, which the graph's
    probit likelihood turns into 1e-7 per observation: the reference is scipy.)
    """
    eta = design.X @ density.expand(x)["beta"]
    if design.offset is not None:
        eta = eta + design.offset
    for (_, u), block in zip(density.effects(x), design.blocks, strict=True):
        eta = eta + np.sum(u[block.codes] * block.X, axis=1)
    y = design.y
    if design.family.name == "poisson":
        return float(np.sum(stats.poisson.logpmf(y, np.exp(eta))))
    trials = np.ones_like(y) if design.trials is None else design.trials
    if design.family.link == "probit":
        log_p, log_q = special.log_ndtr(eta), special.log_ndtr(-eta)
    else:
        log_p, log_q = -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)
    binom = special.gammaln(trials + 1) - special.gammaln(y + 1) - special.gammaln(trials - y + 1)
    return float(np.sum(binom + y * log_p + (trials - y) * log_q))


def random_point(density: JointDensity, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return density.initial_point(seed) + 0.3 * rng.normal(size=density.ndim)


def make_density(name: str, centred: bool) -> JointDensity:
    """Every factor non-centred, or centred where it can be (scalar intercepts)."""
    design = design_of(name)
    centering = {
        b.group: centred and b.n_terms == 1 and bool(np.all(b.X == 1.0)) for b in design.blocks
    }
    if any(centering[b.group] and b.n_terms > 1 for b in design.blocks):
        centering = dict.fromkeys(centering, False)
    return JointDensity(design, resolve_priors(design), centered=centering)


@pytest.mark.parametrize("centred", [False, True], ids=["non-centred", "centred"])
@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_log_density_is_the_graph_prior_plus_the_exact_likelihood(name: str, centred: bool) -> None:
    design = design_of(name)
    density = make_density(name, centred)
    for seed in (1, 2):
        x = random_point(density, seed)
        value, _ = density.logp(x)
        expected = graph_log_prior(design, density, x) + exact_loglik(design, density, x)
        # PyMC's Beta(2, 2) log density (a two-term correlation) is 2.2e-8 below the
        # exact log 6 + log x + log(1 - x): an absolute 1e-7 covers it
        assert value == pytest.approx(expected, rel=1e-11, abs=1e-7)


@pytest.mark.parametrize("centred", [False, True], ids=["non-centred", "centred"])
@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_gradient_matches_differences(name: str, centred: bool) -> None:
    density = make_density(name, centred)
    x = random_point(density, 3)
    _, gradient = density.logp(x)
    h = 1e-5
    numeric = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        numeric[i] = (density.logp(x + e)[0] - density.logp(x - e)[0]) / (2 * h)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-6)


def test_effects_are_the_offsets_times_the_factor() -> None:
    density = make_density("poisson-three-terms-offset", centred=False)
    x = random_point(density, 4)
    ((z, u),) = density.effects(x)
    values = density.expand(x)
    sd = np.array([float(values[f"sd_a__{t}"]) for t in ("Intercept", "x", "w")])
    covariance = np.outer(sd, sd) * values["corr_a"]
    factor = np.linalg.cholesky(covariance)
    np.testing.assert_allclose(u, z @ factor.T, rtol=1e-10)


def test_overflow_gives_minus_infinity_and_other_families_are_refused() -> None:
    density = make_density("poisson-crossed-slopes", centred=False)
    x = density.initial_point(0)
    x[density.n_hyper] = 1e300
    value, gradient = density.logp(x)
    assert value == -math.inf and np.all(gradient == 0.0)
    gaussian = build_design("x ~ 1 + (1 | a)", frame(), "gaussian")
    assert not supports_joint_density(gaussian)
    with pytest.raises(ValueError, match="binomial, Bernoulli and Poisson"):
        JointDensity(gaussian, resolve_priors(gaussian))
