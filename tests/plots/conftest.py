"""Comparisons for the plot tests, built without MCMC.

The full-Bayes side is a stand-in posterior: draws of every random effect
from a normal around the EB mean with the corrected EB SD, and of every
hyperparameter around its MLE. It has the names and dims of the real
posterior, so the plots see what they see in use, and the tests stay fast
and deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import hiermodels as hm
from hiermodels.design.design import Design

DRAWS = 400


@dataclass(frozen=True)
class StandInBayesFit:
    """What ``compare_shrinkage`` reads from a ``BayesFit``."""

    design: Design
    idata: xr.DataTree

    def ranef_summary(self, ci_prob: float = 0.95) -> pd.DataFrame:
        rows = []
        post = self.idata["posterior"]
        for name in post.data_vars:
            if not name.startswith("u_"):
                continue
            group = name[2:]
            var = post[name]
            for term in var[f"{group}__term"].values:
                for level in var[group].values:
                    x = np.asarray(var.sel({group: level, f"{group}__term": term})).ravel()
                    low, high = np.quantile(x, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
                    rows.append(
                        {"grpvar": group, "term": str(term), "grp": level, "estimate": x.mean(),
                         "se": x.std(ddof=1), "lower": low, "upper": high}
                    )  # fmt: skip
        return pd.DataFrame(rows)


def stand_in_posterior(eb: hm.EBFit, seed: int = 0) -> xr.DataTree:
    """Posterior-shaped draws around the EB answer (2 chains × ``DRAWS``)."""
    rng = np.random.default_rng(seed)
    shape = (2, DRAWS)
    coords: dict[str, Any] = {"chain": [0, 1], "draw": np.arange(DRAWS)}
    data: dict[str, xr.DataArray] = {}
    summary = eb.ranef_summary()
    for group, frame in summary.groupby("grpvar", sort=False):
        levels = list(dict.fromkeys(frame["grp"]))
        terms = list(dict.fromkeys(frame["term"]))
        wide = frame.set_index(["grp", "term"])
        mean = wide["estimate"].unstack("term").loc[levels, terms].to_numpy()
        sd = wide["se"].unstack("term").loc[levels, terms].to_numpy()
        draws = mean + 1.3 * sd * rng.standard_normal((*shape, *mean.shape))
        data[f"u_{group}"] = xr.DataArray(
            draws,
            dims=("chain", "draw", group, f"{group}__term"),
            coords={group: levels, f"{group}__term": terms},
        )
    for row in eb.mle.varcorr.itertuples():
        if row.grp == "Residual":
            data["sigma"] = xr.DataArray(
                row.sdcor * np.exp(0.05 * rng.standard_normal(shape)), dims=("chain", "draw")
            )
        elif not isinstance(row.var2, str):
            data[f"sd_{row.grp}__{row.var1}"] = xr.DataArray(
                row.sdcor * np.exp(0.25 * rng.standard_normal(shape)) + 1e-3,
                dims=("chain", "draw"),
            )
    for group in eb.mle.varcorr["grp"].unique():
        rows = eb.mle.varcorr[(eb.mle.varcorr["grp"] == group) & eb.mle.varcorr["var2"].notna()]
        if rows.empty:
            continue
        terms = list(dict.fromkeys(eb.mle.varcorr.loc[
            (eb.mle.varcorr["grp"] == group) & eb.mle.varcorr["var2"].isna(), "var1"]))  # fmt: skip
        q = len(terms)
        corr = np.broadcast_to(np.eye(q), (*shape, q, q)).copy()
        for r in rows.itertuples():
            a, b = terms.index(r.var1), terms.index(r.var2)
            rho = np.tanh(
                np.arctanh(np.clip(r.sdcor, -0.95, 0.95)) + 0.3 * rng.standard_normal(shape)
            )
            corr[..., a, b] = corr[..., b, a] = rho
        data[f"corr_{group}"] = xr.DataArray(
            corr,
            dims=("chain", "draw", f"{group}__term", f"{group}__term_bis"),
            coords={f"{group}__term": terms, f"{group}__term_bis": terms},
        )
    posterior = xr.Dataset(data, coords=coords)
    return xr.DataTree.from_dict({"posterior": posterior})


def comparison_for(
    name: str, formula: str, family: str = "gaussian", **eb_options: Any
) -> tuple[hm.ShrinkageComparison, StandInBayesFit, hm.EBFit]:
    model = hm.Model(formula, hm.datasets.load(name), family=family)
    eb = model.fit_eb(**eb_options)
    bayes = StandInBayesFit(model.design, stand_in_posterior(eb))
    return hm.compare_shrinkage(eb, bayes), bayes, eb


@pytest.fixture(scope="session")
def sleep_comparison() -> tuple[hm.ShrinkageComparison, StandInBayesFit, hm.EBFit]:
    return comparison_for("sleepstudy", "Reaction ~ Days + (Days | Subject)")


@pytest.fixture(scope="session")
def cbpp_comparison() -> tuple[hm.ShrinkageComparison, StandInBayesFit, hm.EBFit]:
    return comparison_for(
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        family="binomial",
        plugin="all",
        eb_method="quadrature",
    )


@pytest.fixture(scope="session")
def classroom_comparison() -> tuple[hm.ShrinkageComparison, StandInBayesFit, hm.EBFit]:
    return comparison_for(
        "classroom", "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)"
    )


@pytest.fixture(autouse=True)
def _close_figures() -> Any:
    yield
    plt.close("all")
