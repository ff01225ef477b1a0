"""fit_bayes says when its draws fail the diagnostics, with advice that fits the failure."""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
import xarray as xr

import hiermodels as hm
from hiermodels.bayes import BayesFit
from hiermodels.bayes.convergence import Diagnostics, sampling_problem
from hiermodels.errors import SamplingWarning

ALL_ARGUMENTS = ("draws", "tune", "chains", "target_accept")


def _diag(divergences: int = 0, r_hat: float = 1.001, ess: float = 900.0) -> Diagnostics:
    ok = divergences == 0 and r_hat <= 1.01 and ess >= 400
    return Diagnostics(divergences, r_hat, ess, "sd_g__Intercept", "beta[x]", ok, 400.0)


def test_healthy_diagnostics_give_no_message() -> None:
    assert sampling_problem(_diag(), tunable=ALL_ARGUMENTS) is None


def test_the_scatter_of_a_short_healthy_run_is_not_a_problem() -> None:
    """Short of the recommended thresholds, but within what a few hundred draws give."""
    diag = _diag(r_hat=1.012, ess=300)
    assert not diag.ok
    assert sampling_problem(diag, tunable=ALL_ARGUMENTS) is None
    assert sampling_problem(_diag(r_hat=1.025, ess=300), tunable=ALL_ARGUMENTS) is not None
    assert sampling_problem(_diag(r_hat=1.012, ess=190), tunable=ALL_ARGUMENTS) is not None


def test_divergences_ask_for_a_higher_acceptance_rate_not_more_draws() -> None:
    message = sampling_problem(_diag(divergences=266, r_hat=1.21), tunable=ALL_ARGUMENTS)
    assert message is not None
    assert "266 divergent transition(s)" in message
    assert "max r_hat 1.210 (sd_g__Intercept; want <= 1.01)" in message
    assert "target_accept=0.95" in message and "priors=" in message
    assert "sampling longer does not remove them" in message
    assert "raise draws" not in message
    # an argument the fitting function lacks is not named
    without = sampling_problem(_diag(divergences=3), tunable=("draws", "tune", "chains"))
    assert without is not None and "target_accept" not in without
    assert "them: give the SDs more informative priors (priors=)" in without


def test_slow_mixing_asks_for_more_draws() -> None:
    message = sampling_problem(_diag(r_hat=1.03, ess=150), tunable=ALL_ARGUMENTS)
    assert message is not None
    assert "min bulk ESS 150 (beta[x]; want >= 400)" in message
    assert "raise draws= and tune= (or add chains=)" in message
    assert "divergen" not in message and "target_accept" not in message


def test_chains_that_do_not_move_are_not_told_to_sample_longer() -> None:
    """A constant response gave r_hat 1e16 and ESS 2: more draws cannot help."""
    for diag in (_diag(r_hat=1e16, ess=2.0), _diag(r_hat=float("nan"), ess=float("nan"))):
        message = sampling_problem(diag, tunable=ALL_ARGUMENTS)
        assert message is not None and "stuck" in message
        assert "max r_hat 1e+16" in message or "max r_hat nan" in message
        assert "more draws will not fix this" in message
        assert "raise draws" not in message


@cache
def _sleepstudy(draws: int, tune: int) -> tuple[BayesFit, list]:
    model = hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit_bayes(draws=draws, tune=tune, chains=2, random_seed=1, progressbar=False)
    return fit, [w for w in caught if issubclass(w.category, SamplingWarning)]


def test_a_healthy_fit_is_silent() -> None:
    fit, caught = _sleepstudy(500, 500)
    assert caught == []
    diag = fit.diagnostics(warn=False)
    assert diag.ok and diag.ess_min == 200  # two chains: 100 each


def test_a_short_run_warns_once_from_fit_bayes() -> None:
    fit, caught = _sleepstudy(30, 30)
    (warning,) = caught
    message = str(warning.message)
    diag = fit.diagnostics(warn=False)
    assert not diag.ok
    assert f"max r_hat {diag.max_r_hat:.3f}" in message or f"ESS {diag.min_ess_bulk:.0f}" in message
    assert message == sampling_problem(diag, tunable=ALL_ARGUMENTS[:3])
    # the same builder behind diagnostics(warn=True): one copy of the logic
    with pytest.warns(SamplingWarning) as again:
        fit.diagnostics()
    assert [str(w.message) for w in again] == [message]


def test_divergences_in_the_draws_are_reported_with_their_advice() -> None:
    fit, _ = _sleepstudy(500, 500)
    stats = fit.idata["sample_stats"].to_dataset()
    diverging = np.zeros(stats["diverging"].shape, dtype=bool)
    diverging[0, :7] = True
    stats["diverging"] = stats["diverging"].copy(data=diverging)
    broken = BayesFit(
        idata=xr.DataTree.from_dict({"posterior": fit.posterior, "sample_stats": stats}),
        design=fit.design,
        priors=fit.priors,
    )
    with pytest.warns(SamplingWarning, match="7 divergent transition") as caught:
        diag = broken.diagnostics()
    assert diag.divergences == 7 and not diag.ok
    assert "sampling longer does not remove them" in str(caught[0].message)


def test_empirical_bayes_mcmc_warns_through_fit_bayes() -> None:
    model = hm.Model("Reaction ~ Days + (1 | Subject)", hm.datasets.load("sleepstudy"))
    with pytest.warns(SamplingWarning, match="the MCMC draws are not reliable") as caught:
        fit = model.fit_eb(
            eb_method="mcmc", draws=20, tune=20, chains=2, random_seed=1, progressbar=False
        )
    assert len([w for w in caught if w.category is SamplingWarning]) == 1
    assert np.all(np.isfinite(fit.means[0]))


def test_fit_bayes_advice_names_target_accept_which_it_takes() -> None:
    """The divergence advice names ``target_accept``, and fit_bayes passes it to NUTS."""
    from hiermodels.bayes.samplers import RUN_SETTINGS

    assert "target_accept" in RUN_SETTINGS
    model = hm.Model("Reaction ~ Days + (1 | Subject)", hm.datasets.load("sleepstudy"))
    stats = []
    for target in (0.6, 0.99):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)
            fit = model.fit_bayes(
                draws=200, tune=300, chains=2, random_seed=2, progressbar=False,
                target_accept=target,
            )  # fmt: skip
        stats.append(float(fit.idata["sample_stats"]["step_size"].mean()))
    # a higher acceptance rate is reached with smaller steps
    assert stats[1] < 0.7 * stats[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tune": 0}, "tune must be a positive integer \\(NUTS adapts its step size"),
        ({"draws": 0}, "draws must be a positive integer"),
        ({"chains": 2.5}, "chains must be a positive integer"),
        ({"target_accept": 1.0}, "target_accept must be a number strictly between 0 and 1"),
        ({"target_accept": "high"}, "target_accept must be a number strictly between 0 and 1"),
    ],
)
def test_run_settings_are_checked_before_sampling(options: dict, message: str) -> None:
    model = hm.Model("Reaction ~ Days + (1 | Subject)", hm.datasets.load("sleepstudy"))
    with pytest.raises(ValueError, match=message):
        model.fit_bayes(**options)
