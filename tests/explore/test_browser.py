"""Each explorer in a real browser: move a slider, read the page, compare with the Python API.

References: the package's own fits at the slider's value (``NormalNormal.fit(tau2=)``,
``morris_intervals``, ``james_stein``, ``BetaBinomial.loglik``, ``Model.fit_mle(theta=)``);
the closed forms they implement are documented in their docstrings.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.compound import BetaBinomial, BetaBinomialFit, NormalNormal
from hiermodels.compound import _normal_math as nm
from hiermodels.explorer.normal import full_bayes_grid
from hiermodels.no_pooling import no_pooling_estimates
from hiermodels.plots.compound import baseball_estimates

pytestmark = pytest.mark.xdist_group("browser")

TOL = 1e-6


def close(page_values: Any, reference: Any) -> None:
    np.testing.assert_allclose(np.asarray(page_values, float), reference, rtol=TOL, atol=TOL)


def eight_schools() -> NormalNormal:
    data = hm.datasets.load("eight_schools")
    return NormalNormal(data["y"], data["sigma"], units=data["school"].astype(str))


def check_normal_at_slider(opened: Any, model: NormalNormal) -> float:
    tau = opened.value("#tau-value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fit = model.fit(tau2=tau**2)
    iv = fit.intervals(0.95)
    close(opened.value("#mu-value"), fit.mu)
    close(opened.value("#loglik-value"), fit.loglik)
    close(opened.column("B"), fit.shrinkage)
    close(opened.column("eb_mean"), fit.post_mean)
    close(opened.column("eb_lower"), iv.lower)
    close(opened.column("eb_upper"), iv.upper)
    return tau


def test_eight_schools_page_matches_the_api(open_page: Any, tmp_path: Path) -> None:
    model = eight_schools()
    opened = open_page(hm.explore("eight_schools"))
    opened.move("#tau-slider", 870)
    tau = check_normal_at_slider(opened, model)
    assert 1.0 < tau < 60.0  # the slider moved off the ML estimate (0 for these data)
    # at Morris's own A the page's Morris intervals are morris_intervals()
    a_hat = float(nm.morris_batch(model.y[None, :], model.se**2)[3][0])
    opened.page.evaluate(f"hmExplorer.setTau({float(np.sqrt(a_hat))!r})")
    morris = model.morris_intervals(0.95)
    close(opened.column("morris_mean"), morris.mean)
    close(opened.column("morris_lower"), morris.lower)
    close(opened.column("morris_upper"), morris.upper)
    grid = full_bayes_grid(model, 0.95)
    close(opened.column("fb_lower"), grid.lower)
    close(opened.column("fb_upper"), grid.upper)
    assert opened.curve_problems() == []
    opened.screenshot_check(tmp_path / "eight_schools.png")
    assert opened.console_errors == []
    assert opened.blocked == []


def test_full_bayes_grid_at_the_complete_pooling_limit() -> None:
    # A prior that pins tau at 0 makes every theta_i equal mu, whose posterior under
    # mu ~ N(0, 100^2) is normal: precision sum(1/se^2) + 1/100^2 (conjugate closed form).
    model = eight_schools()
    hyperpriors = {
        "mu": ("Normal", {"mu": 0.0, "sigma": 100.0}),
        "tau": ("HalfNormal", {"sigma": 1e-4}),
    }
    grid = full_bayes_grid(model, 0.95, hyperpriors)
    precision = np.sum(1.0 / model.se**2) + 1.0 / 100.0**2
    mean = np.sum(model.y / model.se**2) / precision
    half = stats.norm.ppf(0.975) / np.sqrt(precision)
    close(grid.post_mean, np.full(model.k, mean))
    close(grid.lower, np.full(model.k, mean - half))
    close(grid.upper, np.full(model.k, mean + half))


def test_full_bayes_grid_refuses_a_non_normal_mu_prior() -> None:
    with pytest.raises(ValueError, match="Normal hyperprior on mu"):
        full_bayes_grid(
            eight_schools(), 0.95, {"mu": ("StudentT", {"nu": 3.0, "mu": 0.0, "sigma": 10.0})}
        )


def test_baseball_page_matches_the_api(open_page: Any, tmp_path: Path) -> None:
    table = baseball_estimates()
    ybar = float(table["raw"].mean())
    model = NormalNormal(table["raw"], np.sqrt(ybar * (1 - ybar) / 45), units=table.index)
    opened = open_page(hm.explore("baseball"))
    opened.move("#tau-slider", 600)
    tau = check_normal_at_slider(opened, model)
    fit = model.fit(tau2=tau**2)
    truth = table["truth"].to_numpy()
    close(opened.value("#tse-eb"), np.sum((fit.post_mean - truth) ** 2))
    close(opened.value("#tse-js"), np.sum((model.james_stein().estimates - truth) ** 2))
    close(opened.value("#tse-raw"), np.sum((model.y - truth) ** 2))
    opened.page.locator("button[data-set-tau='ml']").click()
    close(opened.value("#tau-value"), model.fit("ml").tau)
    assert "Each player's batting average" in opened.page.locator("p.intro").inner_text()
    # the log-likelihood falls more than 15 below its maximum at large tau: cut, and said so
    tau_hi = opened.page.evaluate("JSON.parse(document.getElementById('hm-data').textContent)")[
        "tau_range"
    ][1]
    assert model.fit(tau2=tau_hi**2).loglik < model.fit("ml").loglik - 15
    assert "leaves the panel" in opened.page.locator("#loglik-clip-note").inner_text()
    assert opened.curve_problems() == []
    opened.screenshot_check(tmp_path / "baseball.png")
    assert opened.console_errors == []


def test_rats_page_matches_the_api(open_page: Any, tmp_path: Path) -> None:
    data = hm.datasets.load("rats_tumors")
    model = BetaBinomial(data["y"], data["K"])
    opened = open_page(hm.explore("rats_tumors"))
    opened.move("#mu-slider", 560)
    opened.move("#strength-slider", 300)
    mu, strength = opened.value("#mu-value"), opened.value("#strength-value")
    alpha, beta = mu * strength, (1 - mu) * strength
    at = BetaBinomialFit(
        units=model.units,
        successes=model.successes,
        trials=model.trials,
        method="ml",
        alpha=alpha,
        beta=beta,
        prior_mean=mu,
        precision=strength,
        alpha_se=None,
        beta_se=None,
        boundary=False,
        loglik=model.loglik(alpha, beta),
    )
    close(opened.value("#loglik-value"), model.loglik(alpha, beta))
    close(opened.column("B"), at.shrinkage)
    close(opened.column("post_mean"), at.post_mean)
    close(opened.column("post_sd"), at.post_sd)
    opened.page.locator("button[data-set='mle']").click()
    fit = model.fit("ml")
    close(opened.value("#mu-value"), fit.prior_mean)
    close(opened.value("#strength-value"), fit.precision)
    close(opened.value("#loglik-value"), fit.loglik)
    assert opened.curve_problems() == []
    opened.move("#strength-slider", 1000)
    assert opened.curve_problems() == []
    opened.screenshot_check(tmp_path / "rats.png")
    assert opened.console_errors == []


@pytest.mark.parametrize(
    ("formula", "dataset", "group"),
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "Subject"),
        ("log_radon ~ floor + (1 | county)", "radon", "county"),
    ],
)
def test_mixed_page_matches_the_api(
    open_page: Any, tmp_path: Path, formula: str, dataset: str, group: str
) -> None:
    model = hm.Model(formula, hm.datasets.load(dataset))
    fit = model.fit_mle()
    opened = open_page(hm.explore(fit))
    opened.move("#c-slider", 27)
    c = opened.value("#c-value")
    assert 0.0 < c < 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at_c = model.fit_mle(theta=c * fit.theta)
    terms = list(fit.layout.blocks[0].terms)
    expected = at_c.ranef[group][terms].to_numpy() + np.array(
        [at_c.fixef.get(t, 0.0) for t in terms]
    )
    cells = opened.page.locator("#groups-table td[data-field='coef']")
    values = np.array([float(v) for v in cells.evaluate_all("c => c.map(x => x.dataset.value)")])
    close(values.reshape(-1, len(terms)), expected)
    close(opened.value("#sigma-value"), at_c.sigma)
    close([opened.value(f"#beta-{j}") for j in range(len(at_c.beta))], at_c.beta)
    if len(terms) == 1:
        sd = at_c.varcorr.query("var1 == '(Intercept)' or var1 == 'Intercept'")["sdcor"].iloc[0]
        close(opened.value("#ratio-value"), sd / at_c.sigma)
    text = opened.page.locator("main").inner_text()
    assert "sd_" not in text and "__" not in text
    assert opened.curve_problems() == []
    opened.screenshot_check(tmp_path / f"{dataset}.png")
    assert opened.console_errors == []


def js_to_zero(y: np.ndarray, v: float) -> np.ndarray:
    # Efron & Morris (1973): towards a known point 0, c = 1 - (k - 2) v / sum y^2
    return (1.0 - (len(y) - 2) * v / np.sum(y**2)) * y


def test_simulator_page_matches_the_api(open_page: Any, tmp_path: Path) -> None:
    opened = open_page(hm.explore("simulator", reps=50))
    opened.move("#k-slider", 6)
    sigma = opened.value("#sigma-value")
    assert opened.value("#k-value") == 6
    theta, y = opened.column("theta", "#data-table"), opened.column("y", "#data-table")
    assert len(y) == 6
    model = NormalNormal(y, sigma)
    close(opened.column("eb", "#data-table"), model.fit("ml").post_mean)
    close(opened.column("js", "#data-table"), model.james_stein().estimates)
    close(opened.column("js0", "#data-table"), js_to_zero(y, sigma**2))
    assert np.all(np.isfinite(theta))
    # the risk at k = 6 from the page's own replicated draws
    draws = opened.page.evaluate("hmExplorer.draws(6)")
    thetas, ys = np.array(draws["theta"]), np.array(draws["y"])
    assert ys.shape == (50, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # some replicates are boundary fits
        eb = np.array([NormalNormal(row, sigma).fit("ml").post_mean for row in ys])
    js = np.array([hm.compound.james_stein(row, sigma).estimates for row in ys])
    row = "#risk-table tr[data-k='6']"
    close(opened.value(f"{row} td[data-field='raw']"), np.mean((ys - thetas) ** 2))
    close(opened.value(f"{row} td[data-field='eb']"), np.mean((eb - thetas) ** 2))
    close(opened.value(f"{row} td[data-field='js']"), np.mean((js - thetas) ** 2))
    # James–Stein has no value below its threshold: k >= 3 towards 0, k >= 4 towards ybar
    assert (
        opened.page.locator("#risk-table tr[data-k='2'] td[data-field='js0']").get_attribute(
            "data-value"
        )
        == ""
    )
    assert (
        opened.page.locator("#risk-table tr[data-k='3'] td[data-field='js0']").get_attribute(
            "data-value"
        )
        != ""
    )
    assert (
        opened.page.locator("#risk-table tr[data-k='3'] td[data-field='js']").get_attribute(
            "data-value"
        )
        == ""
    )
    assert opened.curve_problems() == []
    opened.screenshot_check(tmp_path / "simulator.png")
    assert opened.console_errors == []


def test_eight_schools_explains_morris_and_the_boundary(open_page: Any) -> None:
    model = eight_schools()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert [model.fit(m).tau for m in ("ml", "reml", "mm")] == [0.0, 0.0, 0.0]
    assert nm.morris_batch(model.y[None, :], model.se**2)[3][0] == 0.0
    opened = open_page(hm.explore("eight_schools"))
    page = opened.page
    assert opened.value("#tau-value") == 0.0  # the page opens at the ML estimate
    # Morris's factor (k - 3)/(k - 1) for k = 8, and the unit whose two means differ most,
    # with the numbers of the table
    note = page.locator("#morris-note").inner_text()
    assert "(k − 3)/(k − 1) = 5/7" in note
    eb, morris = opened.column("eb_mean"), opened.column("morris_mean")
    i = int(np.argmax(np.abs(eb - morris)))
    assert f"school {model.units[i]}: plain EB {eb[i]:.4f}, Morris {morris[i]:.4f}" in note
    zero = page.locator("#eb-zero-width-note")
    assert zero.is_visible() and "at τ = 0 its intervals have no width" in zero.inner_text()
    close(opened.column("eb_upper") - opened.column("eb_lower"), np.zeros(model.k))
    # four estimates at tau = 0 share one label on each tau chart
    for chart in ("#loglik-chart", "#posterior-chart"):
        labels = page.locator(f"{chart} text.mark-label").all_text_contents()
        assert labels == ["ML, REML, moments (DerSimonian–Laird), Morris Â: τ = 0"]
    opened.move("#tau-slider", 870)
    assert zero.is_hidden()
    assert opened.curve_problems() == []
    assert opened.console_errors == []


def shrinkage_outside_unit_interval(fit: Any, at_c: Any, group: str) -> dict[str, list[str]]:
    """Groups whose fraction of the way to the population value at c is outside [0, 1], by term.

    The fraction is (no pooling - estimate at c) / (no pooling - population value at c),
    with the no-pooling estimates of ``no_pooling_estimates`` at the fit.
    """
    terms = list(fit.layout.blocks[0].terms)
    long = no_pooling_estimates(fit)
    own = long.assign(value=long["no_pooling"] + long["population_coef"]).pivot(
        index="grp", columns="term", values="value"
    )
    ranef = at_c.ranef[group][terms]
    own.index = own.index.astype(str)
    own = own.loc[ranef.index.astype(str), terms]
    population = np.array([at_c.fixef.get(t, 0.0) for t in terms])
    fraction = (own.to_numpy() - (ranef.to_numpy() + population)) / (own.to_numpy() - population)
    outside = (fraction < -1e-9) | (fraction > 1 + 1e-9)
    return {t: [str(g) for g in ranef.index[outside[:, j]]] for j, t in enumerate(terms)}


def heading(page: Any, text: str) -> bool:
    return bool(page.locator("section.panel h2", has_text=text).count() == 1)


@pytest.mark.parametrize(
    ("formula", "dataset", "group", "far", "outside_at_fit"),
    [
        # correlated intercepts and slopes carry some subjects past the population value
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "Subject", None, True),
        # a scalar intercept at the fit: every fraction is a B_i in [0, 1]; at c = 100 the
        # re-estimated floor effect moves the counties' estimates out of it
        ("log_radon ~ floor + (1 | county)", "radon", "county", 80, False),
    ],
)
def test_mixed_page_explains_shrinkage_outside_zero_one(
    open_page: Any, formula: str, dataset: str, group: str, far: int | None, outside_at_fit: bool
) -> None:
    model = hm.Model(formula, hm.datasets.load(dataset))
    fit = model.fit_mle()
    opened = open_page(hm.explore(fit))
    page = opened.page
    note = page.locator("#shrinkage-range-note")
    positions = [("fit", None)] + ([] if far is None else [("far", far)])
    for name, position in positions:
        if position is not None:
            opened.move("#c-slider", position)
        c = opened.value("#c-value")
        if name == "fit":
            assert c == 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            at_c = fit if c == 1.0 else model.fit_mle(theta=c * fit.theta)
        outside = shrinkage_outside_unit_interval(fit, at_c, group)
        count = sum(len(v) for v in outside.values())
        if name == "fit":
            assert (count > 0) == outside_at_fit
        else:
            assert count > 0
        assert page.locator("#size-chart circle.ring").count() == count
        assert opened.curve_problems() == []
        if count == 0:
            assert note.is_hidden() and note.inner_text() == ""
            continue
        text = note.inner_text()
        assert note.is_visible() and f"{count} of " in text and "outside [0, 1]" in text
        for term, levels in outside.items():
            if levels:
                assert f"{term}: {group} " in text
            if 0 < len(levels) <= 6:  # up to six are named per term
                for level in levels:
                    assert f" {level} (" in text
    if dataset == "sleepstudy":
        # correlated intercepts and slopes carry some groups past the population value at the fit
        assert "shrunk together" in note.inner_text()
        assert heading(page, "Shrinkage of each group")
        assert "Every group has n = 10 observations" in page.locator("main").inner_text()
    else:
        # at the fit every county lies in [0, 1]; far out, the re-estimated floor effect is named
        assert "floor" in note.inner_text() and "re-estimated" in note.inner_text()
        assert heading(page, "Shrinkage against group size")
    assert opened.console_errors == []
