"""The compound package imports without PyMC, PyTensor, ArviZ or matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hiermodels

HEAVY = ("pymc", "pytensor", "arviz", "matplotlib")

# ``hiermodels/__init__`` also imports the mixed-model engines, whose import
# time is their own; a bare parent package isolates what the compound package
# itself pulls in.
SCRIPT = f"""
import sys, types
parent = types.ModuleType("hiermodels")
parent.__path__ = [{str(Path(hiermodels.__file__).parent)!r}]
sys.modules["hiermodels"] = parent
import hiermodels.compound
print(",".join(name for name in {HEAVY!r} if name in sys.modules))
"""


def test_import_of_the_compound_package_leaves_the_heavy_libraries_alone():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
