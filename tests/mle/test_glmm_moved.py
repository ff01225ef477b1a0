"""The GLMM fit's former module still serves its names for one release, with a warning."""

from __future__ import annotations

import pytest

import hiermodels.mle.fit as fit_module
import hiermodels.mle.laplace as laplace_module
from hiermodels.mle import glmm


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("fit_glmm", fit_module),
        ("PirlsResult", laplace_module),
        ("LaplaceDeviance", laplace_module),
        ("AgqDeviance", laplace_module),
        ("GlmerLaplaceDeviance", laplace_module),
        ("laplace_deviance", laplace_module),
    ],
)
def test_old_glmm_names_warn_and_are_the_new_ones(name: str, home: object) -> None:
    with pytest.warns(DeprecationWarning, match=rf"hiermodels\.mle\.glmm\.{name} is deprecated"):
        moved = getattr(glmm, name)
    assert moved is getattr(home, name)


def test_names_that_never_lived_there_are_missing() -> None:
    with pytest.raises(AttributeError, match="no attribute 'stage_one'"):
        glmm.stage_one  # noqa: B018
