"""The explorer without a browser: the page's contents, refused sources, the command."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.cli import main
from hiermodels.explorer import Explorer
from hiermodels.explorer.mixed import multiplier_grid

ROOT = Path(hm.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schools() -> Explorer:
    return hm.explore("eight_schools")


def test_page_makes_no_network_reference(schools: Explorer) -> None:
    page = schools.html
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src")):
        assert not re.search(rf"<{tag}[^>]*\b{attr}\s*=", page, re.I), f"<{tag} {attr}=...>"
    assert not re.search(r"url\(\s*['\"]?https?:", page, re.I)
    assert "@import" not in page
    # the only http(s) string is the SVG namespace, an identifier that is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) == {"http://www.w3.org/2000/svg"}


def test_page_carries_its_data_as_json(schools: Explorer) -> None:
    found = re.search(
        r"<script type='application/json' id='hm-data'>(.*?)</script>", schools.html, re.S
    )
    assert found is not None
    data = json.loads(found.group(1))
    assert data["kind"] == "normal"
    assert data["units"] == list("ABCDEFGH")
    np.testing.assert_array_equal(data["y"], hm.datasets.load("eight_schools")["y"])


def test_title_is_escaped_and_script_cannot_be_closed_early() -> None:
    page = hm.explore("simulator", title="</script><b>x</b>").html
    assert "<title>&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;</title>" in page
    assert page.count("</script>") == 2


def test_repr_html_is_an_iframe_of_the_page(schools: Explorer) -> None:
    frame = schools._repr_html_()
    assert frame.startswith("<iframe srcdoc='")
    srcdoc = re.search(r"srcdoc='(.*?)'", frame, re.S)
    assert srcdoc is not None and html.unescape(srcdoc.group(1)) == schools.html


def test_save_writes_the_page(schools: Explorer, tmp_path: Path) -> None:
    path = schools.save(tmp_path / "schools.html")
    assert path.read_text(encoding="utf-8") == schools.html
    with pytest.raises(IsADirectoryError, match="is a folder"):
        schools.save(tmp_path)


def test_a_table_of_y_and_se_is_a_normal_source() -> None:
    frame = pd.DataFrame({"trial": ["a", "b", "c"], "y": [0.1, 0.5, -0.2], "se": [0.2, 0.3, 0.25]})
    page = hm.explore(frame, ci_prob=0.9)
    assert page.kind == "normal" and page.payload["units"] == ["a", "b", "c"]
    assert page.payload["z"] == pytest.approx(1.6448536269514722, rel=1e-12)
    assert page.payload["morris"] is False  # Morris needs k >= 4


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (42, TypeError, "cannot open a int; it takes a NormalNormal"),
        ("nonsense", ValueError, "cannot open 'nonsense'"),
        ("sleepstudy", ValueError, "mixed-model dataset: fit a one-factor model first"),
        (pd.DataFrame({"y": [1.0, 2.0]}), ValueError, r"needs columns y and se.*lacks \['se'\]"),
        (pd.DataFrame({"y": [1.0, None], "se": [1.0, 1.0]}), ValueError, "must hold numbers"),
    ],
)
def test_bad_sources_are_refused(source: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        hm.explore(source)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(
        TypeError, match=r"unknown options \['seed'\]; it takes: ci_prob, hyperpriors"
    ):
        hm.explore("eight_schools", seed=3)
    with pytest.raises(ValueError, match="k must be a whole number from 2 to 40"):
        hm.explore("simulator", k=1)


def test_crossed_and_nested_fits_are_refused() -> None:
    pastes = hm.Model("strength ~ 1 + (1 | batch/cask)", hm.datasets.load("pastes")).fit_mle()
    with pytest.raises(
        ValueError, match=r"one grouping factor, but this fit has 2 random-effect terms"
    ):
        hm.explore(pastes)


def test_glmm_fits_are_refused() -> None:
    model = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        hm.datasets.load("cbpp"),
        family="binomial",
    )
    with pytest.raises(ValueError, match=r"needs a linear mixed model .* binomial GLMM"):
        hm.explore(model.fit_mle())


def test_multiplier_grid_holds_the_fit_and_both_ends() -> None:
    grid = multiplier_grid()
    assert grid.size == 81 and grid[0] == 0.0 and 1.0 in grid
    assert np.all(np.diff(grid) > 0) and grid[-1] == pytest.approx(100.0)


def test_cli_writes_the_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rats.html"
    assert main(["explore", "rats_tumors", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "data-kind='beta_binomial'" in out.read_text(encoding="utf-8")


def test_cli_reads_a_csv_of_y_and_se(tmp_path: Path) -> None:
    csv = tmp_path / "studies.csv"
    csv.write_text("study,y,se\nA,0.3,0.1\nB,0.1,0.2\nC,0.5,0.15\nD,-0.1,0.2\n")
    out = tmp_path / "studies.html"
    assert main(["explore", str(csv), "-o", str(out)]) == 0
    assert '"units":["A","B","C","D"]' in out.read_text(encoding="utf-8")


def test_cli_fits_a_one_factor_model(tmp_path: Path) -> None:
    out = tmp_path / "sleep.html"
    args = ["explore", "sleepstudy", "--formula", "Reaction ~ Days + (1 | Subject)", "-o", str(out)]
    assert main(args) == 0
    assert "data-kind='mixed'" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explore", "sleepstudy"], "sleepstudy is a mixed-model dataset: give --formula"),
        (["explore", "nowhere.csv"], "no such file: nowhere.csv"),
        (["explore", "nonsense"], "no such file or dataset: nonsense"),
        (
            ["explore", "pastes", "--formula", "strength ~ 1 + (1 | batch/cask)"],
            "the explorer shows one grouping factor",
        ),
        (
            [
                "explore",
                "cbpp",
                "--formula",
                "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                "--family",
                "binomial",
            ],
            "needs a linear mixed model",
        ),
    ],
)
def test_cli_errors_are_one_line_with_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hiermodels: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_cli_subprocess_writes_the_default_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hiermodels", "explore", "simulator"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "explore-simulator.html").is_file()
