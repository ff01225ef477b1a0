"""``hiermodels fit --weights COLUMN``: the weighted fit's tables, and bad weights as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.cli import main

REFERENCE = Path(__file__).parent / "reference" / "lme4" / "cbpp_gaussian_weighted_reml.json"
FORMULA = "incidence / size ~ period + (1 | herd)"


@pytest.fixture
def cbpp_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cbpp = hm.datasets.load("cbpp")
    # a CSV column of 1-4 reads as numbers: labelled periods stay a factor
    data = cbpp.assign(negative=-cbpp["size"], period="p" + cbpp["period"].astype(str))
    data.to_csv(tmp_path / "cbpp.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_weights_column_gives_lme4s_weighted_fit(
    cbpp_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "cbpp.csv", FORMULA, "--weights", "size", "--method", "reml", "--out", "w"]
    assert main(args) == 0, capsys.readouterr().err
    fixef = pd.read_csv(cbpp_csv / "w" / "fixef.csv")
    lme4 = json.loads(REFERENCE.read_text())["fixef"]
    assert len(fixef) == len(lme4)
    np.testing.assert_allclose(fixef["estimate"], list(lme4.values()), rtol=1e-4)


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("negative", "weights are negative in 56 rows (first rows: 2, 3, 4, 5, 6, ...)"),
        ("sizes", "column 'sizes' (used in the weights) is not in the data"),
    ],
)
def test_bad_weights_are_one_line_and_exit_code_2(
    cbpp_csv: Path, capsys: pytest.CaptureFixture[str], column: str, message: str
) -> None:
    assert main(["fit", "cbpp.csv", FORMULA, "--weights", column, "--out", "bad"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hiermodels: error: ") and message in lines[0]
    assert captured.out == ""
