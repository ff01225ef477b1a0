"""Real datasets shipped with hiermodels.

Every dataset is a CSV file in ``hiermodels/datasets/data`` and loads as a
:class:`pandas.DataFrame` with explicit column types: grouping and other
categorical columns are pandas categoricals whose level labels look like the
data (``"308"``, ``"AITKIN"``), numeric columns stay numeric.

Examples
--------
>>> import hiermodels as hm
>>> sleep = hm.datasets.load("sleepstudy")
>>> sleep["Subject"].cat.categories[:3].tolist()
['308', '309', '310']
>>> print(hm.datasets.describe("sleepstudy"))  # doctest: +ELLIPSIS
sleepstudy: ...
"""

from __future__ import annotations

import difflib
import functools
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import pandas as pd

__all__ = ["available", "describe", "load"]

Kind = Literal["category", "int64", "float64"]


@dataclass(frozen=True)
class Column:
    """One column of a shipped dataset.

    Attributes
    ----------
    name : str
        Column name in the CSV header.
    kind : {"category", "int64", "float64"}
        Type the column is loaded as.
    meaning : str
        What the column measures or identifies.
    levels : tuple of str or None
        Explicit level order for a categorical column; ``None`` orders the
        levels numerically when every label is an integer, otherwise
        alphabetically.
    """

    name: str
    kind: Kind
    meaning: str
    levels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Dataset:
    """Catalogue entry of a shipped dataset.

    Attributes
    ----------
    name : str
        Name used by :func:`load` (the CSV file stem).
    title : str
        One-line summary.
    description : str
        The study design and what the data are used for.
    source : str
        Citation of the original study and where the file was taken from.
    columns : tuple of Column
        Every column, in file order.
    """

    name: str
    title: str
    description: str
    source: str
    columns: tuple[Column, ...]


def _cat(name: str, meaning: str, levels: tuple[str, ...] | None = None) -> Column:
    return Column(name, "category", meaning, levels)


def _int(name: str, meaning: str) -> Column:
    return Column(name, "int64", meaning)


def _float(name: str, meaning: str) -> Column:
    return Column(name, "float64", meaning)


_LME4 = "Distributed with the R package lme4"

_CATALOGUE: tuple[Dataset, ...] = (
    Dataset(
        name="sleepstudy",
        title="Reaction time over days of sleep restriction",
        description=(
            "18 subjects were restricted to three hours of sleep per night; their average "
            "reaction time on a psychomotor vigilance task was recorded on each of ten days. "
            "The classic example for a random intercept and slope per subject."
        ),
        source=(
            "Belenky, G. et al. (2003). Patterns of performance degradation and restoration "
            "during sleep restriction and subsequent recovery: a sleep dose-response study. "
            f"Journal of Sleep Research 12, 1-12. {_LME4} as `sleepstudy`."
        ),
        columns=(
            _float("Reaction", "Average reaction time (ms)."),
            _int("Days", "Days of sleep restriction (0-9); day 0 is the baseline."),
            _cat("Subject", "Subject identifier (18 levels)."),
        ),
    ),
    Dataset(
        name="tlc",
        title="Blood lead in the Treatment of Lead-Exposed Children trial",
        description=(
            "100 children with elevated blood lead were randomised to placebo or to the "
            "chelating agent succimer; blood lead was measured at weeks 0, 1, 4 and 6. "
            "Long format, one row per child and visit."
        ),
        source=(
            "Treatment of Lead-Exposed Children (TLC) Trial Group (2000). As analysed in "
            "Fitzmaurice, G. M., Laird, N. M. and Ware, J. H. (2011). Applied Longitudinal "
            "Analysis, 2nd ed. Wiley."
        ),
        columns=(
            _cat("id", "Child identifier (100 levels)."),
            _cat("treatment", "Treatment arm.", levels=("placebo", "succimer")),
            _int("week", "Week of the measurement (0, 1, 4 or 6)."),
            _float("lead", "Blood lead level (micrograms per decilitre)."),
        ),
    ),
    Dataset(
        name="classroom",
        title="First-grade mathematics gain: students in classrooms in schools",
        description=(
            "Study of Instructional Improvement: 1190 first-grade students in 312 classrooms "
            "of 107 US elementary schools. A three-level design (students within classrooms "
            "within schools); teacher mathematics knowledge is missing for some classrooms."
        ),
        source=(
            "Hill, H. C., Rowan, B. and Ball, D. L. (2005). Effects of teachers' mathematical "
            "knowledge for teaching on student achievement. American Educational Research "
            "Journal 42, 371-406. As analysed in West, B. T., Welch, K. B. and Gałecki, A. T. "
            "Linear Mixed Models: A Practical Guide Using Statistical Software, Chapman & "
            "Hall/CRC, chapter 4 (R package WWGbook, `classroom`)."
        ),
        columns=(
            _int("sex", "1 = girl, 0 = boy."),
            _int("minority", "1 = minority student, 0 = not."),
            _int("mathkind", "Mathematics score in the spring of kindergarten."),
            _int("mathgain", "Gain in mathematics score from kindergarten to first grade."),
            _float("ses", "Student socioeconomic status."),
            _float("yearstea", "Years of teaching experience of the first-grade teacher."),
            _float("mathknow", "Teacher's mathematics content knowledge (NaN when missing)."),
            _float("housepov", "Share of households near the school below the poverty line."),
            _float("mathprep", "Teacher's number of mathematics content and methods courses."),
            _cat("classid", "Classroom identifier (312 levels)."),
            _cat("schoolid", "School identifier (107 levels)."),
            _cat("childid", "Student identifier (1190 levels)."),
        ),
    ),
    Dataset(
        name="dyestuff",
        title="Dyestuff yield by batch of intermediate product",
        description=(
            "Five preparations of a dyestuff were made from each of six batches of an "
            "intermediate product; the question is how much batch-to-batch variation adds "
            "to the variation in yield. The one-way random-effects example."
        ),
        source=(
            "Davies, O. L. and Goldsmith, P. L. (eds.) (1972). Statistical Methods in "
            f"Research and Production, 4th ed. Oliver and Boyd, section 6.4. {_LME4} as "
            "`Dyestuff`."
        ),
        columns=(
            _cat("Batch", "Batch of the intermediate product (A-F)."),
            _float("Yield", "Yield of the preparation (grams of standard colour)."),
        ),
    ),
    Dataset(
        name="dyestuff2",
        title="Constructed dyestuff-like data with no batch variance",
        description=(
            "Same layout as dyestuff, but constructed so that the between-batch mean square "
            "is smaller than the within-batch one: the maximum-likelihood estimate of the "
            "batch variance is zero (a singular fit)."
        ),
        source=(
            "Box, G. E. P. and Tiao, G. C. (1973). Bayesian Inference in Statistical "
            f"Analysis. Addison-Wesley, section 5.1.2. {_LME4} as `Dyestuff2`."
        ),
        columns=(
            _cat("Batch", "Batch (A-F)."),
            _float("Yield", "Simulated yield."),
        ),
    ),
    Dataset(
        name="penicillin",
        title="Penicillin potency: plates crossed with samples",
        description=(
            "Each of six penicillin samples was applied to each of 24 agar plates and the "
            "diameter of the zone of inhibited growth was measured: two fully crossed "
            "random factors."
        ),
        source=(
            "Davies, O. L. and Goldsmith, P. L. (eds.) (1972). Statistical Methods in "
            f"Research and Production, 4th ed. Oliver and Boyd. {_LME4} as `Penicillin`."
        ),
        columns=(
            _float("diameter", "Diameter of the zone of inhibited growth (mm)."),
            _cat("plate", "Assay plate (24 levels, a-x)."),
            _cat("sample", "Penicillin sample (6 levels, A-F)."),
        ),
    ),
    Dataset(
        name="pastes",
        title="Paste strength: casks nested in delivery batches",
        description=(
            "Three casks were chosen from each of ten delivery batches and two assays made "
            "on each cask: casks are nested within batches."
        ),
        source=(
            "Davies, O. L. and Goldsmith, P. L. (eds.) (1972). Statistical Methods in "
            f"Research and Production, 4th ed. Oliver and Boyd, section 6.5. {_LME4} as "
            "`Pastes`."
        ),
        columns=(
            _float("strength", "Strength of the paste."),
            _cat("batch", "Delivery batch (10 levels, A-J)."),
            _cat("cask", "Cask within the batch (a-c)."),
            _cat("sample", "Batch and cask together, e.g. 'A:a' (30 levels)."),
        ),
    ),
    Dataset(
        name="radon",
        title="Household radon in Minnesota counties",
        description=(
            "Radon measurements in 919 Minnesota homes in 85 counties, with the floor of "
            "the measurement and the county's soil uranium; counties hold from one to over "
            "a hundred homes, which makes partial pooling visible."
        ),
        source=(
            "Gelman, A. and Hill, J. (2007). Data Analysis Using Regression and "
            "Multilevel/Hierarchical Models. Cambridge University Press. Distributed with "
            "the R package rstanarm as `radon`."
        ),
        columns=(
            _int("floor", "0 = measured in the basement, 1 = on the first floor."),
            _cat("county", "Minnesota county (85 levels)."),
            _float("log_radon", "Log of the radon measurement (log pCi/L)."),
            _float("log_uranium", "Log of the county-level soil uranium."),
        ),
    ),
    Dataset(
        name="cbpp",
        title="Contagious bovine pleuropneumonia incidence by herd and period",
        description=(
            "Serological incidence of CBPP in 15 zebu herds in Ethiopia, followed over four "
            "periods: new cases out of the herd size. The binomial GLMM example."
        ),
        source=(
            "Lesnoff, M. et al. (2004). Within-herd spread of contagious bovine "
            "pleuropneumonia in Ethiopian highlands. Preventive Veterinary Medicine 64, "
            f"27-40. {_LME4} as `cbpp`."
        ),
        columns=(
            _cat("herd", "Herd identifier (15 levels)."),
            _int("incidence", "New serological cases during the period."),
            _int("size", "Herd size at the start of the period."),
            _cat("period", "Period of the follow-up (1-4)."),
        ),
    ),
    Dataset(
        name="grouseticks",
        title="Ticks on red grouse chicks by brood, location and year",
        description=(
            "Number of sheep ticks counted on the heads of 403 red grouse chicks from 118 "
            "broods at 63 locations, over three years. The Poisson GLMM example, often with "
            "an observation-level effect for overdispersion."
        ),
        source=(
            "Elston, D. A., Moss, R., Boulinier, T., Arrowsmith, C. and Lambin, X. (2001). "
            "Analysis of aggregation, a worked example: numbers of ticks on red grouse "
            f"chicks. Parasitology 122, 563-569. {_LME4} as `grouseticks`."
        ),
        columns=(
            _cat("INDEX", "Chick (observation) identifier (403 levels)."),
            _int("TICKS", "Number of ticks counted on the chick."),
            _cat("BROOD", "Brood identifier (118 levels)."),
            _int("HEIGHT", "Height of the location above sea level (m)."),
            _cat("YEAR", "Year of the count: 95, 96 or 97 (1995-1997)."),
            _cat("LOCATION", "Location identifier (63 levels)."),
        ),
    ),
    Dataset(
        name="insteval",
        title="Lecture evaluations at ETH Zurich: students crossed with lecturers",
        description=(
            "73421 ratings of lectures by 2972 students of 1128 lecturers: a large, partially "
            "crossed design used to test speed and memory of the fitting code."
        ),
        source=(f"Anonymised course evaluations of ETH Zurich. {_LME4} as `InstEval`."),
        columns=(
            _cat("s", "Student identifier (2972 levels)."),
            _cat("d", "Lecturer identifier (1128 levels)."),
            _cat("studage", "Student's semester of study (2, 4, 6 or 8)."),
            _cat("lectage", "How many semesters back the rated lecture took place (1-6)."),
            _cat("service", "1 = the lecture is a service course for another department."),
            _cat("dept", "Department of the lecture (14 levels)."),
            _int("y", "Rating from 1 (poor) to 5 (very good)."),
        ),
    ),
    Dataset(
        name="efron_morris_1970",
        title="Batting averages of 18 players in 1970",
        description=(
            "Hits in each player's first 45 at-bats of the 1970 season, and at-bats and hits "
            "in the rest of the season: the classic demonstration that James-Stein "
            "shrinkage predicts the rest of the season better than the raw averages."
        ),
        source=(
            "Efron, B. and Morris, C. (1975). Data analysis using Stein's estimator and its "
            "generalizations. Journal of the American Statistical Association 70, 311-319. "
            "Distributed with the R package rstanarm as `bball1970`."
        ),
        columns=(
            _cat("Player", "Player's surname (18 levels)."),
            _int("AB", "At-bats in the early part of the season (45 for every player)."),
            _int("Hits", "Hits in those at-bats."),
            _int("RemainingAB", "At-bats in the rest of the season."),
            _int("RemainingHits", "Hits in the rest of the season."),
        ),
    ),
    Dataset(
        name="rats_tumors",
        title="Endometrial stromal polyps in control groups of 71 rat experiments",
        description=(
            "Tumour counts in the control groups of 70 historical experiments and of the "
            "current one (the last row, 4 of 14): the beta-binomial example of a "
            "hierarchical prior estimated from historical data."
        ),
        source=(
            "Tarone, R. E. (1982). The use of historical control information in testing for "
            "a trend in proportions. Biometrics 38, 215-220. As used in Gelman, A. et al. "
            "Bayesian Data Analysis, 3rd ed., chapter 5. Distributed with the R package "
            "rstanarm as `tumors`."
        ),
        columns=(
            _int("y", "Rats that developed a tumour."),
            _int("K", "Rats in the control group."),
        ),
    ),
    Dataset(
        name="eight_schools",
        title="Coaching effects on SAT-V scores in eight schools",
        description=(
            "Estimated effects of coaching programmes on verbal SAT scores in eight high "
            "schools, each with its standard error: the normal-normal hierarchical model "
            "with known sampling variances."
        ),
        source=(
            "Rubin, D. B. (1981). Estimation in parallel randomized experiments. Journal of "
            "Educational Statistics 6, 377-401. As used in Gelman, A. et al. Bayesian Data "
            "Analysis, 3rd ed., section 5.5."
        ),
        columns=(
            _cat("school", "School (A-H)."),
            _float("y", "Estimated coaching effect (SAT points)."),
            _float("sigma", "Standard error of the estimate."),
        ),
    ),
)

_BY_NAME: dict[str, Dataset] = {entry.name: entry for entry in _CATALOGUE}


def available() -> tuple[str, ...]:
    """Names of the shipped datasets, sorted.

    Returns
    -------
    tuple of str
        Every name accepted by :func:`load` and :func:`describe`.
    """
    return tuple(sorted(_BY_NAME))


def _entry(name: str) -> Dataset:
    """Look a dataset up by name, ignoring case; raise a helpful error otherwise."""
    key = name.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    close = difflib.get_close_matches(key, available(), n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown dataset {name!r}.{hint} Available: {', '.join(available())}.")


def _level_order(labels: Iterable[object]) -> list[str]:
    """Numeric order for integer-like labels ("2" before "10"), else alphabetical."""
    values = [str(label) for label in labels]
    if all(v.lstrip("-").isdigit() for v in values):
        return sorted(values, key=int)
    return sorted(values)


def load(name: str) -> pd.DataFrame:
    """Load a shipped dataset.

    Parameters
    ----------
    name : str
        Dataset name, one of :func:`available` (case is ignored).

    Returns
    -------
    pandas.DataFrame
        A fresh frame: categorical columns are pandas categoricals with string
        level labels, numeric columns are ``int64`` or ``float64`` (missing
        values as ``NaN``).

    Raises
    ------
    ValueError
        If ``name`` is not a shipped dataset; the message lists the available
        names and the closest matches.
    """
    # The file is read once per process; every call gets its own deep copy.
    return _read(_entry(name).name).copy(deep=True)


@functools.cache
def _read(name: str) -> pd.DataFrame:
    """The parsed and checked frame of a shipped dataset (shared: callers copy it)."""
    entry = _BY_NAME[name]
    # Explicit dtypes skip type inference; categorical columns are read as text so
    # their labels stay as written ("308", "95") before becoming categories.
    dtypes = {c.name: "str" if c.kind == "category" else c.kind for c in entry.columns}
    path = resources.files(__name__).joinpath("data", f"{entry.name}.csv")
    with resources.as_file(path) as csv_path:
        frame = pd.read_csv(csv_path, dtype=dtypes)
    expected = [column.name for column in entry.columns]
    if list(frame.columns) != expected:
        raise RuntimeError(
            f"{entry.name}.csv has columns {list(frame.columns)}, expected {expected}."
        )
    for column in entry.columns:
        if column.kind == "category":
            labels = frame[column.name]
            order = column.levels or _level_order(labels.unique())
            frame[column.name] = pd.Categorical(labels, categories=list(order))
            if frame[column.name].isna().any():
                raise RuntimeError(f"{entry.name}.{column.name} has labels outside {order}.")
    return frame


def describe(name: str) -> str:
    """Describe a shipped dataset: what it is, its columns and its source.

    Parameters
    ----------
    name : str
        Dataset name, one of :func:`available` (case is ignored).

    Returns
    -------
    str
        A numpydoc-style text with the title, the study, each column's type
        and meaning, and the citation.

    Raises
    ------
    ValueError
        If ``name`` is not a shipped dataset.
    """
    entry = _entry(name)
    lines = [f"{entry.name}: {entry.title}", "", textwrap.fill(entry.description, 79)]
    lines += ["", "Columns", "-------"]
    for column in entry.columns:
        lines.append(f"{column.name} : {column.kind}")
        lines.append(f"    {column.meaning}")
    lines += ["", "Source", "------", textwrap.fill(entry.source, 79)]
    return "\n".join(lines)
