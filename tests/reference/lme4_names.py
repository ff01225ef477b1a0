"""Map hiermodels' names onto lme4's, for comparing with the reference JSON.

hiermodels names follow formulaic (``Intercept``, ``period[T.2]``) and keep
the formula's order for interaction groups (``schoolid:classid`` with levels
``1:160``); lme4 writes ``(Intercept)``, ``period2`` and, for nesting
``a/b``, ``b:a`` with levels ``160:1``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REFERENCE_DIR = Path(__file__).parent / "lme4"


def load_reference(name: str) -> dict[str, Any]:
    """The lme4 reference fit ``name`` (file stem in ``tests/reference/lme4``)."""
    return json.loads((REFERENCE_DIR / f"{name}.json").read_text())


def term_to_lme4(name: str) -> str:
    """``Intercept`` → ``(Intercept)``; ``period[T.2]`` → ``period2``."""
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[T\.(.*?)\]", r"\1", name)


def group_to_lme4(group: str, reference_groups: set[str]) -> str:
    """Our grouping-factor name as lme4 spells it in ``reference_groups``."""
    if group in reference_groups:
        return group
    flipped = ":".join(reversed(group.split(":")))
    if flipped in reference_groups:
        return flipped
    raise KeyError(f"group {group!r} not among lme4's {sorted(reference_groups)}")


def level_to_lme4(level: str, group: str, lme4_group: str) -> str:
    """Level labels of interaction groups follow the group's component order."""
    if group == lme4_group:
        return level
    return ":".join(reversed(level.split(":")))
