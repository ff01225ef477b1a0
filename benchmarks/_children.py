"""What the benchmark scripts share: running one timed child process, finding R's lme4.

Every child prints one JSON object as its last line of output; anything else
(an error, a time-out, no result) comes back as a short status string that
the side-by-side tables show in the child's cell. ``make bench`` runs the
scripts of this folder whose names do not start with ``_``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["THREAD_VARIABLES", "lme4_available", "run_child"]

#: The environment variables that set a child's thread count in BLAS, OpenMP,
#: numba and Rust's rayon; every measured program gets the same.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
)


def run_child(
    cmd: list[str],
    *,
    timeout: float = 1800,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any] | str:
    """Run ``cmd``; its last stdout line as a dict, or a status such as ``"over 1800 s"``."""
    try:
        out = subprocess.run(
            cmd,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            env=None if env is None else dict(env),
        )
    except subprocess.CalledProcessError as err:
        lines = [line for line in err.stderr.strip().splitlines() if line.strip()]
        return "failed: " + (lines[-1].strip()[:80] if lines else f"exit {err.returncode}")
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s"
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return "failed: no result"


def lme4_available() -> bool:
    """Whether ``Rscript`` runs and has lme4."""
    if shutil.which("Rscript") is None:
        return False
    probe = ["Rscript", "-e", "quit(status = !requireNamespace('lme4', quietly = TRUE))"]
    return subprocess.run(probe, capture_output=True).returncode == 0
