"""The ``hiermodels`` command, run as a user runs it: in a subprocess.

The demos and ``fit`` sample for real (2 chains × 200 draws); each run
happens once per session and the tests read what it wrote.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

import hiermodels as hm
from hiermodels.names import EXPLORER_FILENAME, REPORT_FILENAME

# The demos and fit run once per session (see shared_run); the group keeps the
# subprocess tests on one worker where --dist loadgroup works.
pytestmark = pytest.mark.xdist_group("cli")

SMALL = ["--draws", "200", "--chains", "2", "--seed", "3", "--target-accept", "0.85"]
SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    out: Path


def hiermodels(*args: str, cwd: Path, out: Path | None = None) -> Run:
    """Run the console script (the installed entry point) in ``cwd``."""
    script = Path(sys.executable).with_name("hiermodels")
    command = [str(script), *args]
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120"}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    return Run(done.returncode, done.stdout, done.stderr, out or cwd)


def shared_run(
    factory: pytest.TempPathFactory, key: str, args: list[str], out: str, setup: Any = None
) -> Run:
    """Run the command once per test session, even when xdist splits the tests.

    Workers share the session's temporary root: the first to create
    ``<key>.lock`` runs the command and records it in ``<key>.json``; the
    others wait for that record and read the same output folder.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    root = factory.getbasetemp().parent if worker else factory.getbasetemp()
    cwd, record = root / key, root / f"{key}.json"
    try:
        (root / f"{key}.lock").mkdir()
    except FileExistsError:
        deadline = time.monotonic() + 600
        while not record.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record of the {key} run after 10 minutes") from None
            time.sleep(0.5)
    else:
        cwd.mkdir()
        if setup is not None:
            setup(cwd)
        run = hiermodels(*args, cwd=cwd, out=cwd / out)
        partial = record.with_suffix(".tmp")
        partial.write_text(json.dumps([run.returncode, run.stdout, run.stderr]))
        partial.rename(record)  # atomic: readers never see half a record
    code, stdout, stderr = json.loads(record.read_text())
    return Run(code, stdout, stderr, cwd / out)


def images(page: str) -> dict[str, Image.Image]:
    """Every embedded PNG of a report, decoded, by its alt text."""
    found = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)">', page)
    return {alt: Image.open(io.BytesIO(base64.b64decode(data))) for alt, data in found}


def tables(page: str) -> list[str]:
    return re.findall(r"<table>.*?</table>", page, flags=re.S)


def cells(table: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in rows]


# ------------------------------------------------------------------ demos


@pytest.fixture(scope="module")
def sleep_demo(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return shared_run(
        tmp_path_factory, "sleep", ["demo", "sleepstudy", *SMALL], out="hiermodels-report"
    )


@pytest.fixture(scope="module")
def cbpp_demo(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return shared_run(
        tmp_path_factory, "cbpp", ["demo", "cbpp", *SMALL, "--out", "elsewhere"], out="elsewhere"
    )


def test_sleepstudy_demo_prints_the_summary_and_the_steps(sleep_demo):
    assert sleep_demo.returncode == 0, sleep_demo.stderr
    assert "Linear mixed model fit by REML" in sleep_demo.stdout
    assert "REML criterion 1743.6283" in sleep_demo.stdout
    assert "Hyperparameters: marginal MLE beside the posterior" in sleep_demo.stdout
    assert "Traceback" not in sleep_demo.stderr
    for step in ("REML fit", "empirical Bayes", "full Bayes: compile and sample"):
        assert f"✓ {step}" in sleep_demo.stderr
    assert re.search(
        r"report: hiermodels-report/report.html\s+\(total [\d.]+ s\)", sleep_demo.stderr
    )


def test_sleepstudy_report_tables(sleep_demo):
    page = (sleep_demo.out / REPORT_FILENAME).read_text(encoding="utf-8")
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == [
        "What you are looking at",
        "Marginal maximum likelihood (as lme4)",
        "Shrinkage, group by group",
        "Hyperparameters: one plug-in value or a whole posterior",
        "Priors of the full-Bayes fit",
        "How this was computed",
    ]
    found = tables(page)
    fixed = cells(next(t for t in found if "Fixed effects" in t))
    assert fixed[0][:3] == ["coefficient", "MLE", "SE"]
    assert fixed[1][:3] == ["β for Intercept", "251.4", "6.825"]  # lme4: 251.405, 6.825
    assert fixed[2][:2] == ["β for Days", "10.47"]
    hyper = cells(next(t for t in found if "Marginal MLE beside" in t))
    assert [row[0] for row in hyper[1:]] == [
        "σ for Subject: Intercept",
        "σ for Subject: Days",
        "ρ for Subject: (Intercept, Days)",
        "residual σ",
    ]
    assert hyper[1][1] == "24.74" and hyper[4][1] == "25.59"
    digest = cells(next(t for t in found if "Medians over the groups" in t))
    assert [row[1] for row in digest[1:]] == ["Intercept", "Days"]
    assert "full-Bayes intervals are" in page
    shrinkage = pd.read_csv(sleep_demo.out / "shrinkage.csv")
    assert len(shrinkage) == 36
    assert shrinkage["bayes_mean"].notna().all()


def test_sleepstudy_report_embeds_the_pictures(sleep_demo):
    page = (sleep_demo.out / REPORT_FILENAME).read_text(encoding="utf-8")
    pictures = images(page)
    assert list(pictures) == [
        "shrinkage",
        "shrinkage_2d",
        "caterpillar",
        "shrinkage_factor",
        "hyperparameters",
    ]
    for name, image in pictures.items():
        assert image.format == "PNG"
        assert image.width > 400 and image.height > 300
        assert (sleep_demo.out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # the 2-D picture has two panels side by side: wider than tall
    assert pictures["shrinkage_2d"].width > 1.5 * pictures["shrinkage_2d"].height
    assert page.count("<figcaption>") == 5


def test_cbpp_demo_report(cbpp_demo):
    assert cbpp_demo.returncode == 0, cbpp_demo.stderr
    assert "Laplace approximation" in cbpp_demo.stdout
    assert "✓ Laplace fit" in cbpp_demo.stderr
    page = (cbpp_demo.out / REPORT_FILENAME).read_text(encoding="utf-8")
    assert list(images(page)) == ["shrinkage", "caterpillar", "shrinkage_factor", "hyperparameters"]
    fixed = cells(next(t for t in tables(page) if "Fixed effects" in t))
    assert [row[0] for row in fixed[1:]] == [
        "β for Intercept",
        "β for period[T.2]",
        "β for period[T.3]",
        "β for period[T.4]",
    ]
    assert float(fixed[1][1]) == pytest.approx(-1.3985, abs=1e-3)  # lme4 glmer: -1.3985
    settings = re.search(r"<h2>How this was computed</h2>\s*<ul>(.*?)</ul>", page, flags=re.S)
    notes = html.unescape(settings.group(1))
    # the Laplace MLE, EB by quadrature with β plugged in (plugin="all"), in words
    assert "integrated out of the likelihood by the Laplace approximation" in notes
    assert "the SD of the group effects and the fixed effects β are fixed" in notes
    assert "adaptive Gauss–Hermite quadrature" in notes
    assert "residual σ" not in notes  # a binomial model has none
    assert "2 chains × 200 draws" in notes
    assert len(pd.read_csv(cbpp_demo.out / "shrinkage.csv")) == 15
    assert not (cbpp_demo.out.parent / "hiermodels-report").exists()


def test_demo_and_fit_write_the_report_under_the_same_name(sleep_demo, fit_run):
    for run in (sleep_demo, fit_run):
        names = {p.name for p in run.out.iterdir()}
        assert REPORT_FILENAME in names and "index.html" not in names
    assert re.search(rf"report: \S+/{re.escape(REPORT_FILENAME)}\s", sleep_demo.stderr)


def test_a_one_factor_report_links_its_explorer_page(sleep_demo, fit_run, cbpp_demo):
    for run in (sleep_demo, fit_run):
        page = (run.out / REPORT_FILENAME).read_text(encoding="utf-8")
        assert re.search(rf'<a href="{re.escape(EXPLORER_FILENAME)}"', page)
        explorer = (run.out / EXPLORER_FILENAME).read_text(encoding="utf-8")
        assert "Reaction ~ Days + (Days | Subject)" in explorer
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", explorer)
    # the explorer shows linear mixed models: a binomial GLMM's report has no link
    assert not (cbpp_demo.out / EXPLORER_FILENAME).exists()
    assert EXPLORER_FILENAME not in (cbpp_demo.out / REPORT_FILENAME).read_text(encoding="utf-8")


# -------------------------------------------------------------------- fit


def _write_sleep_csv(cwd: Path) -> None:
    hm.datasets.load("sleepstudy").to_csv(cwd / "sleep.csv", index=False)


@pytest.fixture(scope="module")
def fit_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    args = ["fit", "sleep.csv", SLEEP_FORMULA, *SMALL, "--out", "results"]
    return shared_run(tmp_path_factory, "fit", args, out="results", setup=_write_sleep_csv)


def test_fit_writes_tables_posterior_pictures_and_report(fit_run):
    assert fit_run.returncode == 0, fit_run.stderr
    assert "Linear mixed model fit by REML" in fit_run.stdout
    fixef = pd.read_csv(fit_run.out / "fixef.csv", index_col="coef")
    np.testing.assert_allclose(fixef["estimate"], [251.405105, 10.467286], rtol=1e-5)
    varcorr = pd.read_csv(fit_run.out / "varcorr.csv")
    assert list(varcorr["grp"]) == ["Subject", "Subject", "Subject", "Residual"]
    assert len(pd.read_csv(fit_run.out / "ranef_mle.csv")) == 36
    assert len(pd.read_csv(fit_run.out / "ranef_bayes.csv")) == 36
    posterior = xr.open_dataset(fit_run.out / "idata_posterior.nc")
    assert posterior.sizes["chain"] == 2 and posterior.sizes["draw"] == 200
    assert posterior["u_Subject"].dims == ("chain", "draw", "Subject", "Subject__term")
    assert float(posterior["sd_Subject__Days"].mean()) == pytest.approx(6.4, rel=0.3)
    posterior.close()
    for name in ("shrinkage", "shrinkage_2d", "caterpillar", "shrinkage_factor", "hyperparameters"):
        assert Image.open(fit_run.out / f"{name}.png").format == "PNG"
    page = (fit_run.out / REPORT_FILENAME).read_text(encoding="utf-8")
    assert len(images(page)) == 5
    assert re.search(r"wrote \d+ files to results/", fit_run.stderr)


def test_fit_reml_only_writes_the_mle_tables(tmp_path):
    data = hm.datasets.load("dyestuff")
    data.to_csv(tmp_path / "dye.csv", index=False)
    run = hiermodels("fit", "dye.csv", "Yield ~ 1 + (1 | Batch)", "--method", "REML", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "hiermodels-fit"
    assert sorted(p.name for p in out.iterdir()) == ["fixef.csv", "ranef_mle.csv", "varcorr.csv"]
    assert "full Bayes" not in run.stderr
    assert "Batch" in run.stdout and "1527.5" in run.stdout  # lme4: intercept 1527.5


def test_fit_eb_only_draws_eb_pictures(tmp_path):
    data = hm.datasets.load("dyestuff2")
    data.to_csv(tmp_path / "dye2.csv", index=False)
    run = hiermodels("fit", "dye2.csv", "Yield ~ 1 + (1 | Batch)", "--method", "eb", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "hiermodels-fit"
    names = {p.name for p in out.iterdir()}
    assert {"ranef_eb.csv", "shrinkage.csv", "shrinkage.png", "caterpillar.png"} <= names
    assert "hyperparameters.png" not in names and "idata_posterior.nc" not in names
    # the boundary fit is reported loudly, once
    assert "EB boundary" in run.stdout
    assert run.stderr.count("warning: boundary MLE") == 1
    eb = pd.read_csv(out / "ranef_eb.csv")
    np.testing.assert_allclose(eb["estimate"], 0.0, atol=1e-8)


def test_fit_negative_binomial_reports_alpha(tmp_path):
    data = hm.datasets.load("grouseticks")
    data.to_csv(tmp_path / "ticks.csv", index=False)
    formula = "TICKS ~ YEAR + (1 | BROOD)"
    args = ("--family", "negativebinomial", "--method", "laplace")
    run = hiermodels("fit", "ticks.csv", formula, *args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    read = pd.read_csv(tmp_path / "ticks.csv")
    alpha = hm.Model(formula, read, family="negativebinomial").fit_mle().alpha
    assert f"Dispersion alpha (Var = mu + mu^2/alpha): {alpha:.4g}" in run.stdout


# -------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("bad")
    hm.datasets.load("sleepstudy").to_csv(cwd / "sleep.csv", index=False)
    hm.datasets.load("cbpp").to_csv(cwd / "cbpp.csv", index=False)
    (cwd / "empty.csv").write_text("")
    (cwd / "header.csv").write_text("Reaction,Days,Subject\n")
    sleep = hm.datasets.load("sleepstudy")
    for column, row in (("Reaction", 17), ("Days", 5)):
        typo = sleep.astype({column: object})
        typo.loc[row, column] = "abc"  # data row 17 is row 19 in a spreadsheet
        typo.to_csv(cwd / f"typo_{column}.csv", index=False)
    awkward = sleep.assign(Days2=2 * sleep["Days"] + 3)
    awkward.loc[3, "Reaction"] = np.nan
    awkward.to_csv(cwd / "awkward.csv", index=False)
    oats = sleep.rename(columns={"Reaction": "yield", "Days": "lambda", "Subject": "class"})
    oats.to_csv(cwd / "keywords.csv", index=False)
    pupils = sleep.rename(columns={"Subject": "Schüler", "Days": "élève"})
    pupils.to_csv(cwd / "unicode.csv", index=False, encoding="utf-8-sig")
    spaced = sleep.rename(columns={"Subject": "Schüler Nr", "Days": "Tag 1"})
    spaced.to_csv(cwd / "spaced.csv", index=False)
    (cwd / "taken").write_text("a file where the output folder should go")
    return cwd


# A subprocess costs an import of PyMC (seconds): three bad inputs run as the user runs
# them, the others through main() in this process, which is the same code path.
BAD_INPUT = [
    (["fit", "missing.csv", SLEEP_FORMULA], "no such file: missing.csv"),
    (["fit", "sleep.csv", "Reaction ~ Days + (Days | Subject"], "unbalanced parentheses"),
    (["fit", "sleep.csv", SLEEP_FORMULA, "--family", "tweedie"], "unknown family 'tweedie'"),
    (
        ["fit", "typo_Reaction.csv", "Reaction ~ Days + (1 | Subject)"],
        "column 'Reaction' (used in the response 'Reaction') holds numbers but also "
        "1 non-numeric value: 'abc' (rows: 19)",
    ),
]
BAD_INPUT_IN_PROCESS = [
    (["fit", "empty.csv", SLEEP_FORMULA], "cannot read empty.csv as CSV"),
    (["fit", "header.csv", SLEEP_FORMULA], "header.csv has a header but no rows"),
    (["fit", ".", SLEEP_FORMULA], "is a directory"),
    (["fit", "sleep.csv", "Reaction ~ Dayz + (Days | Subject)"], "did you mean 'Days'"),
    (["fit", "sleep.csv", "Reaction ~ Days + (1 | Subjekt)"], "column 'Subjekt'"),
    (["fit", "sleep.csv", "Reaction ~"], "nothing after '~'"),
    (["fit", "sleep.csv", "Reaction ~ Days"], "no random-effect term"),
    (["fit", "sleep.csv", SLEEP_FORMULA, "--family", "poisson"], "poisson"),
    (
        ["fit", "sleep.csv", SLEEP_FORMULA, "--method", "laplace"],
        "--method laplace: a Gaussian model's likelihood is exact: use --method reml or ml",
    ),
    (
        [
            "fit",
            "cbpp.csv",
            "incidence ~ period + (1 | herd)",
            "--family",
            "poisson",
            "--method",
            "ml",
        ],
        "--method ml: ML applies to Gaussian models; family 'poisson' is fitted with "
        "--method laplace",
    ),
    (
        ["fit", "typo_Days.csv", "Reaction ~ Days + (1 | Subject)"],
        "column 'Days' (used in the fixed effects '1 + Days') holds numbers but also "
        "1 non-numeric value: 'abc' (rows: 7)",
    ),
    (["fit", "typo_Days.csv", "Reaction ~ Days + (1 | Subject)"], "the header is row 1"),
    (
        ["fit", "typo_Days.csv", "Reaction ~ 1 + (Days | Subject)"],
        "column 'Days' (used in the random-effect term (1 + Days | Subject)) holds numbers",
    ),
    (
        ["fit", "keywords.csv", "yield ~ `lambda` + (1 | `class`)"],
        "'yield' is a Python keyword: write the column in backticks, `yield`",
    ),
    (
        ["fit", "sleep.csv", "Reaction ~ Days + (1 | Subject) + (1 | Subject)"],
        "term 'Intercept' vary by 'Subject' more than once",
    ),
    (
        ["fit", "sleep.csv", SLEEP_FORMULA, "--method", "reml", "--out", "taken"],
        "--out taken is a file, not a folder",
    ),
    (
        ["fit", "sleep.csv", SLEEP_FORMULA, "--ci-prob", "1.5"],
        "--ci-prob must be a number between 0 and 1, got '1.5'",
    ),
    (["fit", "sleep.csv", SLEEP_FORMULA, "--ci-prob", "x"], "got 'x'"),
    (["demo", "--ci-prob", "0"], "--ci-prob must be a number between 0 and 1, got '0'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_code_2(csv_dir, args, message):
    run = hiermodels(*args, cwd=csv_dir)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("hiermodels: error: ")
    assert message in lines[0]
    assert "Traceback" not in run.stderr and run.stdout == ""


@pytest.mark.parametrize(("args", "message"), BAD_INPUT_IN_PROCESS)
def test_bad_input_in_process(csv_dir, capsys, monkeypatch, args, message):
    from hiermodels.cli import main

    monkeypatch.chdir(csv_dir)
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hiermodels: error: ") and message in lines[0]
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "radon"], "invalid choice: 'radon'"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--draws", "0"], "expected a positive integer"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--method", "mcmc"], "invalid choice: 'mcmc'"),
        (["fit", "sleep.csv"], "the following arguments are required: formula"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--seed=-1"], "expected an integer from 0 to"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--seed", str(2**70)], f"got '{2**70}'"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--seed", "1.5"], "got '1.5'"),
        (["demo", "--seed", "abc"], "argument --seed: expected an integer from 0 to 2**64 - 1"),
        (["demo", "--target-accept", "1.5"], "expected a number between 0 and 1, got '1.5'"),
        (["fit", "sleep.csv", SLEEP_FORMULA, "--target-accept", "x"], "got 'x'"),
    ],
)
def test_bad_options_are_usage_errors_with_exit_code_2(csv_dir, capsys, args, message):
    from hiermodels.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: hiermodels")
    assert message in err


def test_warnings_while_building_the_model_are_one_line_each(csv_dir):
    formula = "Reaction ~ Days + Days2 + (1 | Subject)"
    run = hiermodels("fit", "awkward.csv", formula, "--method", "reml", "--out", "awk", cwd=csv_dir)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert "warning: dropped 1 row of 180 with missing values in: Reaction (1)" in lines
    assert (
        "warning: fixed-effect model matrix is rank deficient so dropping 1 column: Days2" in lines
    )
    # not Python's "path.py:123: UserWarning: ..." followed by the source line
    assert "UserWarning" not in run.stderr and ".py:" not in run.stderr
    assert "warnings.warn" not in run.stderr


@pytest.mark.parametrize(
    ("data", "formula", "names"),
    [
        (
            "keywords.csv",
            "`yield` ~ `lambda` + (`lambda` | `class`)",
            ["lambda", "class"],
        ),
        ("unicode.csv", "Reaction ~ élève + (élève | Schüler)", ["élève", "Schüler"]),
        ("spaced.csv", "Reaction ~ `Tag 1` + (1 | `Schüler Nr`)", ["Tag 1", "Schüler Nr"]),
    ],
)
def test_keyword_and_non_ascii_column_names(csv_dir, capsys, monkeypatch, data, formula, names):
    from hiermodels.cli import main

    monkeypatch.chdir(csv_dir)
    out = f"out_{data[:-4]}"
    assert main(["fit", data, formula, "--method", "reml", "--out", out]) == 0
    captured = capsys.readouterr()
    assert "error" not in captured.err
    fixef = pd.read_csv(csv_dir / out / "fixef.csv", index_col="coef")
    # the sleepstudy slope, whatever the columns are called
    assert fixef.loc[names[0], "estimate"] == pytest.approx(10.467286, rel=1e-5)
    varcorr = pd.read_csv(csv_dir / out / "varcorr.csv")
    assert names[1] in set(varcorr["grp"])


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ValueError("the fit failed\nsecond line"), "hiermodels: error: the fit failed"),
        (RuntimeError("a bug"), "hiermodels: error: unexpected RuntimeError: a bug"),
    ],
)
def test_errors_while_fitting_are_one_line(csv_dir, capsys, monkeypatch, error, message):
    from hiermodels.cli import main

    def failing(*args, **kwargs):
        raise error

    monkeypatch.chdir(csv_dir)
    monkeypatch.setattr(hm.Model, "fit_mle", failing)
    assert main(["fit", "sleep.csv", SLEEP_FORMULA, "--method", "reml", "--out", "f"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [message]


@pytest.mark.parametrize(
    ("divergences", "r_hat", "expected"),
    [(5, 1.05, "--target-accept (e.g. --target-accept 0.95)"), (0, 1.05, "raise --draws")],
)
def test_sampling_advice_names_the_command_options(divergences, r_hat, expected):
    """The library's advice (Python arguments) reads as the command's options."""
    from hiermodels.bayes.convergence import Diagnostics, sampling_problem
    from hiermodels.bayes.samplers import RUN_SETTINGS
    from hiermodels.cli import in_command_line_terms

    diag = Diagnostics(divergences, r_hat, 900.0, "sd_g__Intercept", "beta[x]", False, 400.0)
    message = sampling_problem(diag, tunable=RUN_SETTINGS)
    assert message is not None
    translated = in_command_line_terms(message)
    assert expected in translated
    assert "target_accept=" not in translated and "draws=" not in translated


def test_cli_error_lives_in_errors_and_the_old_name_warns() -> None:
    import hiermodels.cli as cli
    from hiermodels.errors import CliError

    with pytest.warns(DeprecationWarning, match="use hiermodels.errors.CliError"):
        old = cli.CliError
    assert old is CliError


def test_ci_prob_sets_every_interval_written(csv_dir, capsys, monkeypatch):
    """``--ci-prob`` reaches the tables: an 80% interval is inside the 95% one."""
    from hiermodels.cli import main

    monkeypatch.chdir(csv_dir)
    args = ["fit", "sleep.csv", "Reaction ~ Days + (1 | Subject)", "--method", "eb"]
    assert main([*args, "--out", "eb95"]) == 0
    assert main([*args, "--out", "eb80", "--ci-prob", "0.8"]) == 0
    capsys.readouterr()
    wide = pd.read_csv(csv_dir / "eb95" / "ranef_eb.csv")
    narrow = pd.read_csv(csv_dir / "eb80" / "ranef_eb.csv")
    np.testing.assert_allclose(narrow["estimate"], wide["estimate"])
    z80, z95 = 1.2815515655446004, 1.959963984540054
    np.testing.assert_allclose(
        (narrow["upper"] - narrow["lower"]) / (wide["upper"] - wide["lower"]), z80 / z95
    )
