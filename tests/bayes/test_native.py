"""The native functions nutpie calls read their densities' tables as the densities lay them out."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
from hiermodels.bayes.joint_density import JointDensity
from hiermodels.bayes.laplace_density import LaplaceDensity
from hiermodels.bayes.native import NativeDensity, _table
from hiermodels.bayes.priors import resolve_priors
from hiermodels.datasets import load
from hiermodels.design.design import build_design
from hiermodels.design.families import get_family

_LOGP = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_uint64,
    ctypes.POINTER(ctypes.c_double),
    ctypes.POINTER(ctypes.c_double),
    ctypes.POINTER(ctypes.c_double),
    ctypes.c_void_p,
)

CASES = {
    "gaussian": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    "gaussian-crossed": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian"),
    "joint": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "laplace": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "laplace-crossed": ("grouseticks", "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", "poisson"),
}


def _density(case: str) -> NativeDensity:
    name, formula, family = CASES[case]
    d = build_design(formula, load(name), get_family(family))
    priors = resolve_priors(d)
    if case.startswith("gaussian"):
        return GaussianMarginalDensity(d, priors)
    if case.startswith("joint"):
        return JointDensity(d, priors)
    return LaplaceDensity(d, priors)


@pytest.mark.parametrize("case", list(CASES))
def test_native_function_equals_the_density(case: str) -> None:
    density = _density(case)
    table, address = _table(density)
    logp = _LOGP(address)
    rng = np.random.default_rng(11)
    for _ in range(3):
        x = np.ascontiguousarray(density.initial_point(int(rng.integers(1_000_000))))
        expected, expected_grad = density.logp(x)
        gradient = np.empty(x.size)
        value = np.empty(1)
        code = logp(
            x.size,
            x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            gradient.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            value.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            table.address,
        )
        assert code == 0
        assert value[0] == pytest.approx(expected, rel=1e-13)
        np.testing.assert_allclose(gradient, expected_grad, rtol=1e-12, atol=1e-12)
    # a point of the wrong size is refused, not read past its end
    assert logp(x.size - 1, None, None, None, table.address) < 0
