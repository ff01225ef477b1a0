"""Coverage of empirical-Bayes intervals: plug-in, Kass–Steffey-corrected and bootstrap.

A simulation study of the one-way random-intercept model ::

    y_ij = μ + b_i + ε_ij,   b_i ~ N(0, τ²),   ε_ij ~ N(0, σ²),

with ``k`` groups of ``n`` observations: each replicate is fitted by REML,
EB intervals for every ``b_i`` are formed with the plug-in conditional SD and
with the Kass–Steffey correction (and, when asked, Laird and Louis's
parametric-bootstrap interval, :mod:`hiermodels.eb.bootstrap`), and the
share of intervals that cover the true ``b_i`` is recorded. With few groups
``τ̂`` is uncertain, and the plug-in intervals, which ignore that, cover
less than their nominal level.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hiermodels.design.design import build_design
from hiermodels.design.families import get_family
from hiermodels.design.formula import parse_formula
from hiermodels.eb.fit import fit_eb
from hiermodels.intervals import check_ci_prob, either_keyword
from hiermodels.names import DEFAULT_CI_PROB

__all__ = ["eb_interval_coverage"]


def eb_interval_coverage(
    n_groups: int = 8,
    n_per_group: int = 5,
    tau: float = 0.5,
    sigma: float = 1.0,
    replications: int = 200,
    ci_prob: float = DEFAULT_CI_PROB,
    plugin: str = "hyper",
    random_seed: int | None = None,
    *,
    interval: float | None = None,
    bootstrap_nsim: int = 0,
) -> pd.DataFrame:
    """Simulate the coverage of plug-in and corrected EB intervals.

    Parameters
    ----------
    n_groups, n_per_group : int
        Design of each simulated data set.
    tau, sigma : float
        Between-group and residual SDs (``μ = 0``).
    replications : int
        Simulated data sets.
    ci_prob : float
        Nominal coverage of the intervals.
    plugin : {"hyper", "all"}
        What the EB fit plugs in.
    random_seed : int, optional
        Seed of the simulation.
    interval : float, optional
        Deprecated spelling of ``ci_prob``.
    bootstrap_nsim : int
        Bootstrap replicates per data set for the Laird–Louis interval
        (``plugin="hyper"``); 0 (default) leaves it out. Its seeds come from
        a stream of their own, so the simulated data sets, and the other
        rows, do not depend on it.

    Returns
    -------
    pandas.DataFrame
        One row per interval kind (``plug-in``, ``Kass–Steffey``, and
        ``Laird–Louis bootstrap`` with ``bootstrap_nsim``): nominal,
        coverage, its Monte Carlo SE (between replicates, since the intervals
        of one data set share its estimates), mean width, and the share of
        replicates whose ``τ̂`` was 0 (where the plug-in interval has zero width).
    """
    if n_groups < 2 or n_per_group < 2:
        raise ValueError("the study needs at least 2 groups of at least 2 observations")
    ci_prob = check_ci_prob(
        either_keyword(ci_prob, interval, new="ci_prob", old="interval", default=DEFAULT_CI_PROB)
    )
    if bootstrap_nsim < 0:
        raise ValueError(f"bootstrap_nsim must be 0 or more, got {bootstrap_nsim!r}")
    rng = np.random.default_rng(random_seed)
    # a child stream: drawing the bootstrap seeds leaves the data sets' stream alone
    bootstrap_rng = rng.spawn(1)[0]
    kinds = [
        ("plug-in", "lower_plugin", "upper_plugin"),
        ("Kass–Steffey", "lower", "upper"),
    ]
    if bootstrap_nsim:
        kinds.append(("Laird–Louis bootstrap", "lower_bootstrap", "upper_bootstrap"))
    spec = parse_formula("y ~ 1 + (1 | g)")
    family = get_family("gaussian")
    groups = np.repeat([f"g{i:03d}" for i in range(n_groups)], n_per_group)
    hits: dict[str, list[np.ndarray]] = {kind: [] for kind, _, _ in kinds}
    widths: dict[str, list[np.ndarray]] = {kind: [] for kind, _, _ in kinds}
    boundary = 0
    for _ in range(replications):
        effects = rng.normal(0.0, tau, n_groups)
        y = np.repeat(effects, n_per_group) + rng.normal(0.0, sigma, groups.size)
        design = build_design(spec, pd.DataFrame({"y": y, "g": groups}), family)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bootstrap_nsim:
                eb = fit_eb(
                    design,
                    plugin=plugin,
                    interval="bootstrap",
                    nsim=bootstrap_nsim,
                    random_seed=int(bootstrap_rng.integers(2**31)),
                    progressbar=False,
                )
            else:
                eb = fit_eb(design, plugin=plugin)
        boundary += bool(eb.boundary)
        table = eb.ranef_summary(ci_prob=ci_prob)
        for kind, low, high in kinds:
            lo, hi = table[low].to_numpy(), table[high].to_numpy()
            hits[kind].append((lo <= effects) & (effects <= hi))
            widths[kind].append(hi - lo)
    rows = []
    for kind in hits:
        # Intervals from one data set share its estimates: the replicate is the unit of MC error.
        per_replicate = np.array([h.mean() for h in hits[kind]])
        rows.append(
            {
                "interval": kind,
                "nominal": ci_prob,
                "coverage": per_replicate.mean(),
                "mc_se": per_replicate.std(ddof=1) / np.sqrt(replications),
                "mean_width": float(np.mean(np.concatenate(widths[kind]))),
                "boundary_share": boundary / replications,
            }
        )
    return pd.DataFrame(rows)
