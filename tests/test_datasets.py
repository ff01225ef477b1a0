"""The shipped datasets load with the documented sizes, levels and types.

Row and level counts come from the data table in the project's shared README
(the files were exported from lme4, rstanarm and WWGbook in R).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiermodels import datasets

DATA_DIR = Path(datasets.__file__).parent / "data"

ROWS = {
    "sleepstudy": 180,
    "tlc": 400,
    "classroom": 1190,
    "dyestuff": 30,
    "dyestuff2": 30,
    "penicillin": 144,
    "pastes": 60,
    "radon": 919,
    "cbpp": 56,
    "grouseticks": 403,
    "insteval": 73421,
    "efron_morris_1970": 18,
    "rats_tumors": 71,
    "eight_schools": 8,
}

LEVEL_COUNTS = [
    ("sleepstudy", "Subject", 18),
    ("classroom", "schoolid", 107),
    ("classroom", "classid", 312),
    ("classroom", "childid", 1190),
    ("radon", "county", 85),
    ("cbpp", "herd", 15),
    ("cbpp", "period", 4),
    ("grouseticks", "BROOD", 118),
    ("grouseticks", "LOCATION", 63),
    ("grouseticks", "YEAR", 3),
    ("insteval", "s", 2972),
    ("insteval", "d", 1128),
    ("insteval", "dept", 14),
    ("tlc", "id", 100),
    ("tlc", "treatment", 2),
    ("dyestuff", "Batch", 6),
    ("penicillin", "plate", 24),
    ("penicillin", "sample", 6),
    ("pastes", "batch", 10),
    ("pastes", "sample", 30),
    ("eight_schools", "school", 8),
    ("efron_morris_1970", "Player", 18),
]

CATEGORICAL = {
    "sleepstudy": {"Subject"},
    "tlc": {"id", "treatment"},
    "classroom": {"classid", "schoolid", "childid"},
    "dyestuff": {"Batch"},
    "dyestuff2": {"Batch"},
    "penicillin": {"plate", "sample"},
    "pastes": {"batch", "cask", "sample"},
    "radon": {"county"},
    "cbpp": {"herd", "period"},
    "grouseticks": {"INDEX", "BROOD", "YEAR", "LOCATION"},
    "insteval": {"s", "d", "studage", "lectage", "service", "dept"},
    "efron_morris_1970": {"Player"},
    "rats_tumors": set(),
    "eight_schools": {"school"},
}


def test_available_lists_every_shipped_csv() -> None:
    assert set(datasets.available()) == {p.stem for p in DATA_DIR.glob("*.csv")}
    assert set(datasets.available()) == set(ROWS)
    assert list(datasets.available()) == sorted(datasets.available())


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_count(name: str) -> None:
    assert len(datasets.load(name)) == ROWS[name]


@pytest.mark.parametrize(("name", "column", "n_levels"), LEVEL_COUNTS)
def test_number_of_levels(name: str, column: str, n_levels: int) -> None:
    series = datasets.load(name)[column]
    assert len(series.cat.categories) == n_levels
    # Every level occurs in the data and no row is left without a level.
    assert series.nunique() == n_levels
    assert not series.isna().any()


@pytest.mark.parametrize("name", sorted(CATEGORICAL))
def test_categorical_and_numeric_columns(name: str) -> None:
    frame = datasets.load(name)
    categorical = {c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)}
    assert categorical == CATEGORICAL[name]
    for column in set(frame.columns) - categorical:
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    for column in categorical:
        labels = frame[column].cat.categories
        assert all(isinstance(label, str) for label in labels), column


def test_level_labels_look_like_the_data() -> None:
    sleep = datasets.load("sleepstudy")
    assert sleep["Subject"].iloc[0] == "308"
    assert list(sleep["Subject"].cat.categories[:3]) == ["308", "309", "310"]

    cbpp = datasets.load("cbpp")
    assert list(cbpp["herd"].cat.categories) == [str(i) for i in range(1, 16)]
    assert list(cbpp["period"].cat.categories) == ["1", "2", "3", "4"]

    grouse = datasets.load("grouseticks")
    assert list(grouse["YEAR"].cat.categories) == ["95", "96", "97"]

    insteval = datasets.load("insteval")
    assert list(insteval["service"].cat.categories) == ["0", "1"]
    assert list(insteval["studage"].cat.categories) == ["2", "4", "6", "8"]


def test_numeric_ids_are_ordered_numerically() -> None:
    tlc_ids = list(datasets.load("tlc")["id"].cat.categories)
    assert tlc_ids == [str(i) for i in range(1, 101)]
    assert tlc_ids.index("2") < tlc_ids.index("10")
    schools = [int(s) for s in datasets.load("classroom")["schoolid"].cat.categories]
    assert schools == sorted(schools)


def test_tlc_treatment_has_placebo_first() -> None:
    tlc = datasets.load("tlc")
    assert list(tlc["treatment"].cat.categories) == ["placebo", "succimer"]
    assert (tlc["treatment"].value_counts() == 200).all()


def test_classroom_mathknow_missing_as_nan() -> None:
    mathknow = datasets.load("classroom")["mathknow"]
    assert mathknow.dtype == np.float64
    assert mathknow.isna().sum() == 109


def test_values_survive_loading() -> None:
    sleep = datasets.load("sleepstudy")
    assert sleep["Reaction"].iloc[0] == pytest.approx(249.56)
    assert sleep["Days"].dtype == np.int64
    radon = datasets.load("radon")
    assert radon["county"].iloc[0] == "AITKIN"
    tumors = datasets.load("rats_tumors")
    assert tuple(tumors.iloc[-1]) == (4, 14)


def test_load_returns_independent_frames() -> None:
    first = datasets.load("dyestuff")
    first.loc[0, "Yield"] = -1.0
    assert datasets.load("dyestuff").loc[0, "Yield"] == 1545.0


def test_names_are_case_insensitive() -> None:
    assert len(datasets.load("InstEval")) == ROWS["insteval"]


def test_unknown_name_lists_available_and_close_matches() -> None:
    with pytest.raises(ValueError, match="Unknown dataset 'sleepstudi'") as info:
        datasets.load("sleepstudi")
    message = str(info.value)
    assert "Did you mean 'sleepstudy'" in message
    for name in datasets.available():
        assert name in message
    with pytest.raises(ValueError, match="Available: cbpp") as info:
        datasets.describe("no-such-data")
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_describe_names_every_column_and_a_source(name: str) -> None:
    text = datasets.describe(name)
    assert text.startswith(f"{name}: ")
    assert "Source\n------\n" in text
    for column in datasets.load(name).columns:
        assert f"\n{column} : " in text


def test_describe_cites_the_original_studies() -> None:
    assert "Belenky" in datasets.describe("sleepstudy")
    assert "Fitzmaurice" in datasets.describe("tlc")
    assert "Gałecki" in datasets.describe("classroom")
    assert "Efron" in datasets.describe("efron_morris_1970")
    assert "Rubin" in datasets.describe("eight_schools")
