"""The direct marginal density equals the log density of the PyMC marginal graph."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytensor
import pytest

from hiermodels.bayes import build_marginal_model, fit_bayes
from hiermodels.bayes.build import FactorStatistics
from hiermodels.bayes.marginal_density import MarginalDensity, marginal_loglik
from hiermodels.bayes.priors import Prior, resolve_priors
from hiermodels.spec.design import Design, build_design

pytestmark = pytest.mark.xdist_group("bayes-marginal")


def _data(seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(12)], rng.integers(1, 8, 12))
    frame = pd.DataFrame({"g": g, "x": rng.normal(2.0, 1.5, g.size), "w": rng.normal(size=g.size)})
    frame["y"] = 3.0 + 0.5 * frame["x"] - frame["w"] + rng.normal(size=g.size)
    frame["off"] = rng.normal(size=g.size)
    return frame


#: formula, priors overriding the defaults, offset column
CASES = {
    "correlated slope": ("y ~ x + w + (x | g)", {}, None),
    "independent slope": ("y ~ x + (x || g)", {}, "off"),
    "intercept only": ("y ~ x + (1 | g)", {}, None),
    "no intercept": ("y ~ 0 + x + (0 + x | g)", {}, None),
    "other priors": (
        "y ~ x + (x | g)",
        {
            "beta__x": Prior("StudentT", nu=4.0, mu=0.0, sigma=2.0),
            "sd_g__Intercept": Prior("Exponential", lam=0.5),
            "sd_g__x": Prior("Gamma", alpha=2.0, beta=1.0),
            "corr_g": Prior("LKJCorr", eta=4.0),
            "sigma": Prior("InverseGamma", alpha=3.0, beta=2.0),
        },
        "off",
    ),
}


def _design(case: str) -> Design:
    formula, _, offset = CASES[case]
    return build_design(formula, _data(), "gaussian", offset=offset)


def _pymc_point(model: object, values: dict[str, object]) -> dict[str, np.ndarray]:
    """The PyMC model's unconstrained point for the given variable values."""
    point = {}
    for rv in model.free_RVs:  # type: ignore[attr-defined]
        value_var = model.rvs_to_values[rv]  # type: ignore[attr-defined]
        name = rv.name
        if name.startswith("beta__"):
            coef = list(model.coords["coef"]).index(name.removeprefix("beta__"))  # type: ignore[attr-defined]
            constrained = np.asarray(values["beta"])[coef]
        elif name.endswith("__raw"):
            corr = np.asarray(values[name.removesuffix("__raw")])
            constrained = (corr[0, 1] + 1.0) / 2.0
        else:
            constrained = np.asarray(values[name], dtype=float)
        transform = model.rvs_to_transforms[rv]  # type: ignore[attr-defined]
        if transform is not None:
            constrained = transform.forward(constrained, *rv.owner.inputs).eval()
        point[value_var.name] = np.asarray(constrained, dtype=float)
    return point


@pytest.mark.parametrize("case", list(CASES))
def test_log_density_and_gradient_equal_the_pymc_marginal_graph(case: str) -> None:
    design = _design(case)
    priors = resolve_priors(design, CASES[case][1])
    density = MarginalDensity(design, priors)
    model = build_marginal_model(design, priors)
    logp = model.logp()
    values = model.value_vars
    grads = pytensor.grad(logp, values)
    reference = pytensor.function(values, [logp, *grads], mode="FAST_COMPILE")
    rng = np.random.default_rng(5)
    for _ in range(4):
        x = density.initial_point(int(rng.integers(1_000_000)))
        state = density.expand(x)
        np.testing.assert_allclose(
            density.expand(density.unconstrain(state))["beta"], state["beta"]
        )
        point = _pymc_point(model, state)
        ref_logp, *ref_grads = reference(**point)
        ours, gradient = density.logp(x)
        # PyMC keeps some density constants as float32 literals: agreement to ~1e-8
        assert ours == pytest.approx(float(ref_logp), rel=1e-9, abs=1e-6)
        # the same unconstrained coordinates except beta, centred only by the vector form
        by_name = dict(zip([v.name for v in values], ref_grads, strict=True))
        p = len(density.coef)
        separate = [f"beta__{c}" for c in density.coef]
        expected_beta = (
            np.array([float(np.ravel(by_name[name])[0]) for name in separate])
            if all(name in by_name for name in separate)
            else None
        )
        rest = [np.ravel(by_name[v.name]) for v in values if not v.name.startswith("beta")]
        np.testing.assert_allclose(gradient[p:], np.concatenate(rest), rtol=1e-7, atol=1e-9)
        if expected_beta is not None:
            # separate beta__<coef> variables carry no shear: pull ours back to beta
            np.testing.assert_allclose(_beta_gradient(density, x), expected_beta, rtol=1e-5)
        else:
            (beta_value,) = [v.name for v in values if v.name.startswith("beta")]
            np.testing.assert_allclose(gradient[:p], by_name[beta_value], rtol=1e-7, atol=1e-9)


def _beta_gradient(density: MarginalDensity, x: np.ndarray) -> np.ndarray:
    """d log p / d beta by central differences in beta (other coordinates fixed)."""
    state = density.expand(x)
    out = []
    for k in range(len(density.coef)):
        step = 1e-5 * max(1.0, abs(float(state["beta"][k])))
        values = []
        for sign in (1.0, -1.0):
            shifted = dict(state)
            beta = np.array(state["beta"], dtype=float)
            beta[k] += sign * step
            shifted["beta"] = beta
            values.append(density.logp(density.unconstrain(shifted))[0])
        out.append((values[0] - values[1]) / (2 * step))
    return np.asarray(out)


def test_kernel_gradient_matches_central_differences() -> None:
    design = _design("correlated slope")
    stats = FactorStatistics.from_design(design)
    beta, chol, sigma = np.array([2.5, 0.4, -0.8]), (0.9, -0.3, 0.6), 1.1
    value, gradient = marginal_loglik(stats, beta, chol, sigma)
    args = [*beta, *chol, sigma]

    def at(values: list[float]) -> float:
        return marginal_loglik(stats, np.array(values[:3]), tuple(values[3:6]), values[6])[0]

    for k in range(len(args)):
        up, down = list(args), list(args)
        up[k] += 1e-6
        down[k] -= 1e-6
        assert gradient[k] == pytest.approx((at(up) - at(down)) / 2e-6, rel=1e-6, abs=1e-7)
    assert math.isfinite(value)


def test_outputs_have_the_declared_names_and_shapes() -> None:
    design = _design("correlated slope")
    density = MarginalDensity(design, resolve_priors(design))
    state = density.expand(density.initial_point(0))
    assert tuple(state) == density.output_names
    assert [np.shape(v) for v in state.values()] == list(density.output_shapes)
    assert state["corr_g"][0, 1] == pytest.approx(2 * float(state["corr_g__raw"]) - 1)


def test_overflowing_points_give_minus_infinity_not_nan() -> None:
    design = _design("correlated slope")
    density = MarginalDensity(design, resolve_priors(design))
    for far in (800.0, -800.0):  # sigma = exp(800) overflows, exp(-800) is 0
        x = density.initial_point(0)
        x[-1] = far
        value, gradient = density.logp(x)
        assert value == -math.inf and np.all(gradient == 0.0)


def test_unconstrain_refuses_values_outside_the_support() -> None:
    design = _design("correlated slope")
    density = MarginalDensity(design, resolve_priors(design))
    state = density.expand(density.initial_point(0))
    with pytest.raises(ValueError, match="must be positive"):
        density.unconstrain({**state, "sigma": 0.0})
    with pytest.raises(ValueError, match=r"strictly inside \(-1, 1\)"):
        density.unconstrain({**state, "corr_g": 1.0})
    with pytest.raises(ValueError, match="values lack"):
        density.unconstrain({"beta": state["beta"]})


def test_direct_backend_needs_a_marginalised_nutpie_run() -> None:
    crossed = build_design(
        "y ~ x + (1 | g) + (1 | w)", _data().assign(w=lambda f: f["w"] > 0), "gaussian"
    )
    with pytest.raises(ValueError, match="backend='direct'"):
        fit_bayes(crossed, backend="direct", marginalize=False)
    with pytest.raises(ValueError, match="backend='direct'"):
        fit_bayes(_design("intercept only"), backend="direct", sampler="pymc")
    with pytest.raises(ValueError, match="one grouping factor"):
        MarginalDensity(crossed, resolve_priors(crossed))
