"""The HTML report: a sampler problem first, then every section as a lecturer reads it."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

import hiermodels as hm
from hiermodels import plots
from hiermodels.analysis import Analysis, run_analysis
from hiermodels.cli import main
from hiermodels.html_report import HtmlReport, format_number
from hiermodels.names import (
    REPORT_FILENAME,
    coefficient_prior_name,
    correlation_factor_name,
    correlation_label,
    correlation_name,
    display_label,
    sd_name,
)
from hiermodels.report import (
    EXPLORER_ANCHOR,
    PICTURES_STEP,
    analysis_figures,
    mixed_model_report,
    prior_text,
)
from tests.bayes.test_sampling_warnings import _sleepstudy


def _page(draws: int, tune: int) -> tuple[str, str | None]:
    fit, caught = _sleepstudy(draws, tune)
    analysis = Analysis(
        name="sleepstudy",
        formula="Reaction ~ Days + (Days | Subject)",
        family="gaussian (identity)",
        bayes=fit,
    )
    message = str(caught[0].message) if caught else None
    return mixed_model_report(analysis).render(), message


def test_a_sampler_problem_opens_the_report() -> None:
    page, warned = _page(30, 30)
    assert warned is not None  # fit_bayes warned, and the report says the same thing
    notes = re.findall(r'<p class="note">Sampler problem: (.*?)</p>', page, flags=re.S)
    assert len(notes) == 1
    assert html.unescape(notes[0]).rstrip(".") == warned.rstrip(".")
    # before the first section, where no reader can miss it
    assert page.index("Sampler problem:") < page.index("<h2>")
    assert "sample longer" not in page.split("How this was computed")[1]
    assert "see the sampler problem above" in page


def test_a_healthy_sampler_adds_no_note() -> None:
    page, warned = _page(500, 500)
    assert warned is None
    assert "Sampler problem" not in page and "sampler problem above" not in page
    assert "Sampler diagnostics: 0 divergences" in page


def test_a_laplace_integrated_fit_is_named_approximate() -> None:
    fit, _ = _sleepstudy(500, 500)
    exact = mixed_model_report(Analysis(name="s", formula="f", family="g", bayes=fit)).render()
    assert "Full Bayes is approximate" not in exact
    labelled = dataclasses.replace(fit, integrate="laplace")
    page = mixed_model_report(Analysis(name="s", formula="f", family="g", bayes=labelled)).render()
    assert "Full Bayes is approximate" in page and "integrate=&#x27;laplace&#x27;" in page


# ------------------------------------------------------------- read as a lecturer


@pytest.fixture(scope="module")
def sleep_analysis() -> Analysis:
    model = hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy"))
    return run_analysis(model, name="sleepstudy", method="all", draws=300, chains=2, seed=5)


@pytest.fixture(scope="module")
def sleep_page(sleep_analysis: Analysis) -> str:
    return mixed_model_report(sleep_analysis).render()


def _text(page: str) -> str:
    """What a reader reads: the page without its style, embedded pictures and tags."""
    page = re.sub(r"<style>.*?</style>|<img [^>]*>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}</h2>")[1].split("<h2>")[0]


def _rows(section: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)
    return [[html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r)] for r in rows]


def test_display_labels_of_every_kind_of_parameter() -> None:
    assert display_label(sd_name("Subject", "Intercept")) == "σ for Subject: Intercept"
    assert display_label(correlation_label("Subject", "Intercept", "Days")) == (
        "ρ for Subject: (Intercept, Days)"
    )
    assert display_label("sigma") == "residual σ"
    assert display_label(coefficient_prior_name("period[T.2]")) == "β for period[T.2]"
    assert display_label(correlation_name("herd")) == "ρ for herd"
    # names that are no parameter a reader meets pass through unchanged
    for name in ("u_Subject", correlation_factor_name("Subject"), "Intercept"):
        assert display_label(name) == name


def test_the_report_shows_no_internal_parameter_name(sleep_analysis, sleep_page) -> None:
    text = _text(sleep_page)
    for internal in ("sd_", "corr_", "__", "sigma", "hdi_", "mle_quantile", "plug-in of hyper"):
        assert internal not in text, internal
    hyper = _rows(_section(sleep_page, "Hyperparameters: one plug-in value or a whole posterior"))
    names = sleep_analysis.comparison.hyperparameters["parameter"]
    assert [row[0] for row in hyper[1:]] == [display_label(n) for n in names]
    assert "σ for Subject: Days" in text and "ρ for Subject: (Intercept, Days)" in text


def test_the_priors_section_names_each_parameter_and_its_prior(sleep_analysis, sleep_page):
    bayes = sleep_analysis.bayes
    rows = _rows(_section(sleep_page, "Priors of the full-Bayes fit"))
    assert rows[0] == ["parameter", "prior", "chosen by"]
    shown = {row[0]: row[1] for row in rows[1:]}
    assert list(shown) == [
        "β for Intercept",
        "β for Days",
        "residual σ",
        "σ for Subject: Intercept",
        "σ for Subject: Days",
        "ρ for Subject: (Intercept, Days)",
    ]
    assert len(shown) == len(bayes.priors)
    for row, prior in zip(rows[1:], bayes.priors.values(), strict=True):
        assert row[1] == prior_text(prior)
    # the default rule (hiermodels.bayes.priors): HalfStudentT(3, sd(y) / sd(Days)) on σ for Days
    data = hm.datasets.load("sleepstudy")
    scale = data["Reaction"].std() / data["Days"].std()
    assert shown["σ for Subject: Days"] == f"HalfStudentT(ν = 3, σ = {format_number(scale)})"
    assert shown["ρ for Subject: (Intercept, Days)"] == "LKJCorr(η = 2)"
    assert all(row[2] == "default, scaled to the data" for row in rows[1:])


def test_how_it_was_computed_says_what_each_method_did(sleep_analysis, sleep_page) -> None:
    notes = _text(_section(sleep_page, "How this was computed"))
    assert sleep_analysis.mle.method == "REML"
    assert "restricted maximum likelihood (REML)" in notes and "profiled" in notes
    assert "Kass & Steffey" in notes
    assert "integrated out under a flat prior" in notes  # EB's plugin="hyper"
    assert "No-U-Turn Sampler" in notes and "2 chains × 300 draws" in notes
    assert "integrated out exactly" in notes  # the Gaussian model's marginal route
    assert "Random seed 5" in notes


def test_the_timing_table_has_the_pictures_step(sleep_analysis, sleep_page) -> None:
    rows = _rows(_section(sleep_page, "How this was computed"))
    steps = [row[0] for row in rows[1:]]
    assert steps == [*sleep_analysis.timings, PICTURES_STEP]
    assert float(rows[-1][1]) > 0  # five figures take time to draw


def test_the_shrinkage_factor_caption_explains_factors_outside_0_1(sleep_analysis) -> None:
    captions = {name: caption for name, _, caption in analysis_figures(sleep_analysis)}
    outside = plots.out_of_range_factors(sleep_analysis.comparison)
    assert len(outside) > 0  # intercept and slope shrunk together
    caption = captions["shrinkage_factor"]
    assert "crossed the population value" in caption or "moved away from it" in caption
    for level in outside["grp"].unique():
        assert f" {level} (" in caption
    assert "shrunk together" in caption
    # the same analysis with every factor inside [0, 1] adds no such sentence
    table = sleep_analysis.comparison.table.copy()
    for kind in ("eb", "bayes"):
        table[f"{kind}_shrinkage"] = table[f"{kind}_shrinkage"].clip(0, 1)
    tamed = dataclasses.replace(
        sleep_analysis, comparison=dataclasses.replace(sleep_analysis.comparison, table=table)
    )
    plain = {name: caption for name, _, caption in analysis_figures(tamed)}["shrinkage_factor"]
    assert "outside [0, 1]" not in plain and plain.startswith("How far each group moved")


def test_the_explorer_link_has_its_place(sleep_analysis, sleep_page) -> None:
    assert f'id="{EXPLORER_ANCHOR}"' not in sleep_page
    linked = mixed_model_report(sleep_analysis, explorer_link="explorer.html").render()
    anchor = re.search(rf'<p id="{EXPLORER_ANCHOR}"><a href="([^"]+)">', linked)
    assert anchor is not None and anchor.group(1) == "explorer.html"
    assert linked.index(f'id="{EXPLORER_ANCHOR}"') < linked.index("<h2>")


def test_the_report_file_name_is_one_for_every_command(tmp_path, capsys) -> None:
    written = HtmlReport("t").write(tmp_path)
    assert written.name == REPORT_FILENAME == "report.html"
    for command in ("fit", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"(the report is {REPORT_FILENAME})" in " ".join(capsys.readouterr().out.split())
