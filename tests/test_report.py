"""The HTML report puts a sampler problem first, with the advice that fits it."""

from __future__ import annotations

import dataclasses
import html
import re

from hiermodels.analysis import Analysis
from hiermodels.report import mixed_model_report
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
    assert "sampler diagnostics: 0 divergences" in page


def test_a_laplace_integrated_fit_is_named_approximate() -> None:
    fit, _ = _sleepstudy(500, 500)
    exact = mixed_model_report(Analysis(name="s", formula="f", family="g", bayes=fit)).render()
    assert "full Bayes is approximate" not in exact
    labelled = dataclasses.replace(fit, integrate="laplace")
    page = mixed_model_report(Analysis(name="s", formula="f", family="g", bayes=labelled)).render()
    assert "full Bayes is approximate" in page and "integrate=&#x27;laplace&#x27;" in page
