"""The case-study notebooks: each runs top to bottom and its last cell asserts its numbers.

Executing a notebook is the test (slow tier, ``make test-all``): a failed assertion
against lme4 or the published values, or any other error, fails it. The fast checks
only look at the stored files, which the documentation renders without running them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASE_STUDIES = ROOT / "case_studies"
NOTEBOOKS = sorted(CASE_STUDIES.glob("*.ipynb"))
EXPECTED = [
    "01_sleep_deprivation",
    "02_lead_in_children",
    "03_classrooms_in_schools",
    "04_glmms",
    "05_compound_sampling",
    "06_radon",
]
#: Seconds allowed for one cell (the longest, MCMC or the risk simulation, take about a minute).
CELL_TIMEOUT = 1800
KERNEL = "python3"


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _joined(text: str | list[str]) -> str:
    """Notebook files may store a multi-line string as a list of lines."""
    return text if isinstance(text, str) else "".join(text)


def _source(cell: dict) -> str:
    return _joined(cell["source"])


def test_every_case_study_is_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_with_outputs_and_ends_in_checks(path: Path):
    cells = _cells(path)
    assert _source(cells[0]).startswith("# "), "the first cell is the title"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert _source(code[-1]).count("assert ") >= 5, "the last cell asserts the case study's numbers"
    stored = "".join(_joined(o.get("text", "")) for o in code[-1]["outputs"])
    assert "all checks passed" in stored, (
        f"{path.name} is stored without outputs: run `make notebooks`"
    )
    errors = [o for c in code for o in c["outputs"] if o.get("output_type") == "error"]
    assert not errors, f"{path.name} was stored with an error output"


def _kernel_name() -> str:
    """The ``python3`` kernel, registered in this environment if it is not yet."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(prefix=sys.prefix, kernel_name=KERNEL)
    return KERNEL


@pytest.mark.slow
@pytest.mark.xdist_group(name="notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_and_its_checks_pass(path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")

    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name=_kernel_name(),
        record_timing=False,
        resources={"metadata": {"path": str(CASE_STUDIES)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}", pytrace=False)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "all checks passed" in printed
