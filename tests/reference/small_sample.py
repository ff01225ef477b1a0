"""The fits behind the lmerTest, pbkrtest and emmeans references, made by hiermodels.

Each reference JSON names its dataset, its subset rule (the unbalanced TLC
drops visits by the rule in ``tests/reference/lmerTest/models.R``, written
again in :func:`tlc_unbalanced`), its lme4 formula and ``formula_hm``, the
same model in hiermodels' syntax. Coefficients are compared by position:
both programs order them as the formula does.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

import hiermodels as hm
from hiermodels.mle.results import MixedFit

REFERENCE_DIR = Path(__file__).parent

LMERTEST_FITS = [
    "sleepstudy_slope_reml",
    "sleepstudy_slope_ml",
    "penicillin_crossed_reml",
    "pastes_nested_reml",
    "radon_floor_uranium_reml",
    "tlc_factorial_reml",
    "tlc_unbalanced_factorial_reml",
    "tlc_unbalanced_slope_reml",
    "dyestuff2_reml_singular",
]
REML_FITS = [name for name in LMERTEST_FITS if not name.endswith("_ml")]


def load(tool: str, name: str) -> dict[str, Any]:
    """The reference ``name`` made with ``tool`` (a folder of ``tests/reference``)."""
    return json.loads((REFERENCE_DIR / tool / f"{name}.json").read_text())


def tlc_unbalanced() -> pd.DataFrame:
    """TLC without the visits the reference scripts drop."""
    tlc = hm.datasets.load("tlc")
    child = tlc["id"].astype(int)
    week = tlc["week"]
    dropped = (
        ((child % 4 == 0) & (week == 6))
        | ((child % 7 == 0) & (week == 1))
        | ((child % 5 == 0) & (week == 4) & (tlc["treatment"] == "succimer"))
    )
    return tlc[~dropped]


def data_for(ref: dict[str, Any]) -> pd.DataFrame:
    """The data a reference model was fitted to."""
    if ref["subset"] is not None:
        assert ref["dataset"] == "tlc", ref["id"]
        return tlc_unbalanced()
    return hm.datasets.load(ref["dataset"])


@cache
def fitted(name: str) -> MixedFit:
    """hiermodels' fit of the reference model ``name`` (warnings, e.g. singular, silenced)."""
    ref = load("lmerTest", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model(ref["formula_hm"], data_for(ref)).fit_mle(method=ref["method"])
    assert fit.nobs == ref["nobs"]
    return fit
