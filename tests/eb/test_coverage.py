"""Simulation study (slow tier): plug-in EB intervals under-cover with few groups."""

from __future__ import annotations

import pandas as pd
import pytest

from hiermodels.eb.coverage import eb_interval_coverage


@pytest.mark.slow
@pytest.mark.parametrize("n_groups", [6, 12])
def test_plugin_eb_undercovers_and_correction_helps(n_groups: int) -> None:
    table = eb_interval_coverage(
        n_groups=n_groups,
        n_per_group=4,
        tau=0.5,
        sigma=1.0,
        replications=300,
        ci_prob=0.9,
        random_seed=n_groups,
    )
    plain = table.set_index("interval").loc["plug-in"]
    corrected = table.set_index("interval").loc["Kass–Steffey"]
    assert plain["coverage"] < plain["nominal"] - 3 * plain["mc_se"]
    assert corrected["coverage"] > plain["coverage"] + plain["mc_se"]
    assert abs(corrected["coverage"] - 0.9) < abs(plain["coverage"] - 0.9)


def test_the_old_interval_keyword_warns_and_gives_the_same_study() -> None:
    options = {"n_groups": 4, "n_per_group": 3, "replications": 5, "random_seed": 1}
    new = eb_interval_coverage(ci_prob=0.8, **options)
    with pytest.warns(DeprecationWarning, match="interval= is deprecated.*use ci_prob="):
        old = eb_interval_coverage(interval=0.8, **options)
    pd.testing.assert_frame_equal(old, new)
    assert (new["nominal"] == 0.8).all()
    assert (eb_interval_coverage(**options)["nominal"] == 0.95).all()
