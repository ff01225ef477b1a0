"""GLMM sampling: centred and non-centred graphs, the chooser, the native joint density."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from hiermodels.bayes import build_pymc_model
from hiermodels.bayes.centering import choose_centering
from hiermodels.bayes.fit import fit_bayes
from hiermodels.bayes.samplers import sample_pymc_model
from hiermodels.datasets import load
from hiermodels.design.design import Design, build_design
from tests.bayes.conftest import assert_posteriors_agree


@pytest.fixture(scope="module")
def cbpp() -> Design:
    return build_design(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), "binomial"
    )


def _crossed_poisson(levels: tuple[int, int] = (9, 5), seed: int = 1) -> Design:
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(levels[0]), levels[1] * 2)
    b = np.tile(np.repeat(np.arange(levels[1]), 2), levels[0])
    x = rng.normal(size=a.size)
    eta = 0.5 + 0.3 * x + rng.normal(0, 0.6, levels[0])[a] + rng.normal(0, 0.4, levels[1])[b]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})
    data["a"], data["b"] = data["a"].astype(str), data["b"].astype(str)
    return build_design("y ~ x + (1 | a) + (1 | b)", data, "poisson")


def _free(model: pm.Model) -> set[str]:
    return {rv.name for rv in model.free_RVs}


@pytest.mark.parametrize("which", ["cbpp", "crossed"])
def test_centred_density_is_the_non_centred_one_less_the_jacobian(which: str, cbpp: Design) -> None:
    design = cbpp if which == "cbpp" else _crossed_poisson()
    plain = build_pymc_model(design)
    centred = build_pymc_model(design, centered=True)
    groups = [name.removeprefix("z_") for name in _free(plain) if name.startswith("z_")]
    assert groups and {f"u_{g}" for g in groups} <= _free(centred)
    logp_plain = plain.compile_logp()
    logp_centred = centred.compile_logp()
    rng = np.random.default_rng(7)
    for _ in range(5):
        point = {k: v + rng.normal(size=np.shape(v)) for k, v in plain.initial_point().items()}
        shifted = {k: v for k, v in point.items() if not k.startswith("z_")}
        jacobian = 0.0
        for g in groups:
            sd = np.exp(point[f"sd_{g}__Intercept_log__"])
            shifted[f"u_{g}"] = point[f"z_{g}"] * sd
            jacobian += point[f"z_{g}"].size * np.log(sd)
        assert logp_centred(shifted) == pytest.approx(logp_plain(point) - jacobian, rel=1e-10)


def test_centred_graph_keeps_names_and_dims(cbpp: Design) -> None:
    plain = build_pymc_model(cbpp)
    centred = build_pymc_model(cbpp, centered={"herd": True})
    assert _free(centred) == {"beta", "sd_herd__Intercept", "u_herd"}
    assert {d.name for d in centred.deterministics} == {"z_herd"}
    for name in ("u_herd", "z_herd", "beta"):
        assert centred.named_vars_to_dims[name] == plain.named_vars_to_dims[name]


def test_correlated_factors_are_not_centred() -> None:
    rng = np.random.default_rng(2)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=g.size)
    data = pd.DataFrame({"y": rng.poisson(3.0, g.size), "x": x, "g": g.astype(str)})
    design = build_design("y ~ x + (x | g)", data, "poisson")
    assert choose_centering(design) == {"g": False}
    assert "z_g" in _free(build_pymc_model(design, centered=True))
    with pytest.raises(ValueError, match="cannot be centred"):
        build_pymc_model(design, centered={"g": True})
    with pytest.raises(ValueError, match="unknown grouping factors"):
        build_pymc_model(design, centered={"h": True})


def test_chooser_centres_informative_levels_only() -> None:
    rng = np.random.default_rng(3)
    # many counts per level: the data fix every level's effect far better than sd does
    many = np.repeat(np.arange(8), 150)
    eta = 1.0 + rng.normal(0, 0.8, 8)[many]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "g": many.astype(str)})
    counts = build_design("y ~ 1 + (1 | g)", data, "poisson")
    assert choose_centering(counts) == {"g": True}
    assert "u_g" in _free(build_pymc_model(counts, centered="auto"))
    # two bernoulli trials per level: the data say next to nothing about any level
    few = np.arange(1200) % 600
    p = 1.0 / (1.0 + np.exp(-(0.3 + rng.normal(0, 0.5, 600)[few])))
    data = pd.DataFrame({"y": rng.binomial(1, p), "g": few.astype(str)})
    trials = build_design("y ~ 1 + (1 | g)", data, "bernoulli")
    assert choose_centering(trials) == {"g": False}
    assert "z_g" in _free(build_pymc_model(trials, centered="auto"))


def test_centred_and_non_centred_posteriors_agree_on_cbpp(cbpp: Design) -> None:
    run = {"draws": 400, "tune": 400, "chains": 2, "progressbar": False}
    draws = {}
    for centered in (False, True):
        idata = sample_pymc_model(build_pymc_model(cbpp, centered=centered), random_seed=5, **run)
        draws[centered] = idata["posterior"].to_dataset()
    for name in ("beta", "sd_herd__Intercept", "u_herd"):
        a, b = (draws[c][name].values.reshape(-1, *draws[c][name].shape[2:]) for c in draws)
        # a Monte-Carlo error bound from the spread, generous for autocorrelation (ESS ~ n/4)
        se = np.sqrt((a.var(axis=0) + b.var(axis=0)) / (a.shape[0] / 4))
        assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 4 * se), name


def test_cbpp_default_fit_has_no_divergences(cbpp: Design) -> None:
    fit = fit_bayes(cbpp, random_seed=20240611, progressbar=False, log_likelihood=False)
    assert int(fit.idata["sample_stats"]["diverging"].sum()) == 0


def test_native_joint_density_and_graph_posteriors_agree_on_cbpp(cbpp: Design) -> None:
    """The default (the compiled joint density) against the PyMC graph sampled by nutpie."""
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 9, "progressbar": False}
    native = fit_bayes(cbpp, log_likelihood=False, **settings)
    graph = fit_bayes(cbpp, backend="python", log_likelihood=False, **settings)
    assert native.posterior["u_herd"].dims == graph.posterior["u_herd"].dims
    assert_posteriors_agree(native, graph, hyper="median")
