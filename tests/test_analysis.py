"""The whole-pipeline driver: run_analysis fits what it is asked and collects an Analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.analysis import Analysis, TimedSteps, run_analysis
from hiermodels.report import baseball_report, mixed_model_report


@pytest.fixture(scope="module")
def dyestuff() -> hm.Model:
    return hm.Model("Yield ~ 1 + (1 | Batch)", hm.datasets.load("dyestuff"))


def test_a_reml_analysis_holds_the_mle_alone(dyestuff: hm.Model) -> None:
    steps = TimedSteps()
    analysis = run_analysis(dyestuff, name="dyestuff", method="reml", steps=steps)
    assert analysis.mle is not None and analysis.mle.method == "REML"
    assert analysis.eb is None and analysis.bayes is None and analysis.shrinkage_table is None
    assert analysis.mle.loglik == pytest.approx(-159.8271, abs=1e-3)  # lme4: REML -319.6543
    assert list(steps.timings) == ["REML fit"] and analysis.timings is steps.timings
    assert analysis.settings["marginal likelihood"] == "REML"
    assert analysis.ci_prob == 0.95


def test_an_eb_analysis_puts_no_pooling_beside_eb_at_its_ci_prob(dyestuff: hm.Model) -> None:
    narrow = run_analysis(dyestuff, name="d", method="eb", ci_prob=0.5)
    wide = run_analysis(dyestuff, name="d", method="eb")
    for analysis in (narrow, wide):
        table = analysis.shrinkage_table
        assert table is not None and len(table) == 6
        assert table["eb_shrinkage"].between(0, 1).all()
    a, b = narrow.shrinkage_table, wide.shrinkage_table
    ratio = (a["eb_high"] - a["eb_low"]) / (b["eb_high"] - b["eb_low"])
    np.testing.assert_allclose(ratio, 0.6744897501960817 / 1.959963984540054)
    page = mixed_model_report(narrow).render()
    assert "Shrinkage, group by group" in page


def test_bad_method_and_ci_prob_are_refused(dyestuff: hm.Model) -> None:
    with pytest.raises(ValueError, match="method must be one of 'reml'"):
        run_analysis(dyestuff, name="d", method="mcmc")
    with pytest.raises(ValueError, match="exact: use method='REML' or 'ML'"):
        run_analysis(dyestuff, name="d", method="laplace")
    with pytest.raises(ValueError, match="ci_prob must be in"):
        run_analysis(dyestuff, name="d", method="reml", ci_prob=1.0)


def test_analysis_moved_out_of_the_report_module() -> None:
    import hiermodels.report as report

    with pytest.warns(DeprecationWarning, match="use hiermodels.analysis.Analysis"):
        old = report.Analysis
    assert old is Analysis


def test_baseball_report_takes_ci_prob_or_its_old_spelling_not_both() -> None:
    frame = pd.DataFrame()
    with pytest.raises(TypeError, match="pass ci_prob= only; level="):
        baseball_report(frame, frame, [], ci_prob=0.9, level=0.9)
