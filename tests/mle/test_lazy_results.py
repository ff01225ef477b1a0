"""MixedFit's deferred fields and kept tables give what the eager values give.

An engine may pass ``vcov_beta``, ``conditional_modes``,
``conditional_covariances`` and ``linear_predictor`` as zero-argument
callables; every public accessor must then return what it returns for the
values themselves, each callable must run once at most, and only when
something reads it. Derived tables are kept after the first call; callers
get copies.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import threading
import warnings
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.datasets import load
from hiermodels.mle.results import Deferrable, MixedFit

DEFERRABLE = ("vcov_beta", "conditional_modes", "conditional_covariances", "linear_predictor")

FITS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "gaussian"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", "gaussian"),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
}


@pytest.fixture(scope="module", params=list(FITS))
def eager(request: pytest.FixtureRequest) -> MixedFit:
    formula, name, family = FITS[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hm.Model(formula, load(name), family).fit_mle()


def deferred(fit: MixedFit, calls: Counter[str]) -> MixedFit:
    """``fit`` rebuilt with every deferrable field given as a counting callable."""
    values = {f.name: getattr(fit, f.name) for f in dataclasses.fields(fit)}

    def later(name: str) -> Callable[[], object]:
        def compute() -> object:
            calls[name] += 1
            return values[name]

        return compute

    return MixedFit(**{**values, **{name: later(name) for name in DEFERRABLE}})


def assert_same_results(lazy: MixedFit, eager: MixedFit) -> None:
    pd.testing.assert_series_equal(lazy.fixef, eager.fixef)
    pd.testing.assert_series_equal(lazy.fixef_se, eager.fixef_se)
    pd.testing.assert_frame_equal(lazy.vcov, eager.vcov)
    pd.testing.assert_frame_equal(lazy.varcorr, eager.varcorr)
    for group, frame in eager.ranef.items():
        pd.testing.assert_frame_equal(lazy.ranef[group], frame)
    pd.testing.assert_frame_equal(lazy.ranef_frame(), eager.ranef_frame())
    assert str(lazy.summary()) == str(eager.summary())
    assert lazy.to_xarray().identical(eager.to_xarray())
    pd.testing.assert_series_equal(lazy.fitted(), eager.fitted())
    pd.testing.assert_series_equal(lazy.residuals(), eager.residuals())
    pd.testing.assert_series_equal(lazy.predict(), eager.predict())
    for a, b in zip(lazy.covariances(), eager.covariances(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (lazy.aic, lazy.bic, lazy.singular, lazy.ngroups) == (
        eager.aic,
        eager.bic,
        eager.singular,
        eager.ngroups,
    )


def test_deferred_fields_run_only_when_read_and_once(eager: MixedFit) -> None:
    calls: Counter[str] = Counter()
    lazy = deferred(eager, calls)
    assert not calls
    assert all(Deferrable.pending(lazy, name) for name in DEFERRABLE)
    # what needs none of them
    _ = (lazy.fixef, lazy.aic, lazy.singular, lazy.varcorr, repr(lazy), lazy.ngroups)
    assert not calls
    _ = lazy.ranef
    assert calls == Counter(conditional_modes=1)
    assert Deferrable.pending(lazy, "conditional_covariances")
    assert_same_results(lazy, eager)
    assert calls == Counter({name: 1 for name in DEFERRABLE})
    for name in DEFERRABLE:
        assert not Deferrable.pending(lazy, name)
        assert getattr(lazy, name) is getattr(eager, name)


def test_deferred_and_eager_fits_give_the_same_results(eager: MixedFit) -> None:
    assert_same_results(deferred(eager, Counter()), eager)


def test_a_deferred_field_is_computed_once_under_threads(eager: MixedFit) -> None:
    calls: Counter[str] = Counter()
    gate = threading.Barrier(8)
    values = {f.name: getattr(eager, f.name) for f in dataclasses.fields(eager)}

    def slow() -> object:
        calls["conditional_covariances"] += 1
        return values["conditional_covariances"]

    lazy = MixedFit(**{**values, "conditional_covariances": slow})
    seen: list[object] = []

    def read() -> None:
        gate.wait()
        seen.append(lazy.conditional_covariances)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == Counter(conditional_covariances=1)
    assert all(value is values["conditional_covariances"] for value in seen)


def test_copies_and_pickles_carry_values_not_callables(eager: MixedFit) -> None:
    calls: Counter[str] = Counter()
    lazy = deferred(eager, calls)
    for twin in (pickle.loads(pickle.dumps(lazy)), copy.deepcopy(lazy), copy.copy(lazy)):
        assert not any(Deferrable.pending(twin, name) for name in DEFERRABLE)
        assert_same_results(twin, eager)
    assert calls == Counter({name: 1 for name in DEFERRABLE})
    replaced = dataclasses.replace(lazy, method=lazy.method)
    assert_same_results(replaced, eager)


def test_fields_stay_required_and_frozen() -> None:
    fields = {f.name: f for f in dataclasses.fields(MixedFit)}
    for name in DEFERRABLE:
        assert fields[name].default is dataclasses.MISSING
    with pytest.raises(TypeError):
        MixedFit()  # type: ignore[call-arg]


def test_fields_cannot_be_reassigned(eager: MixedFit) -> None:
    lazy = deferred(eager, Counter())
    with pytest.raises(dataclasses.FrozenInstanceError):
        lazy.conditional_covariances = ()  # type: ignore[misc]


def test_kept_tables_are_handed_out_as_copies(eager: MixedFit) -> None:
    fit = deferred(eager, Counter())
    varcorr = fit.varcorr
    varcorr.iloc[0, 3] = -1.0
    varcorr.index.name = "changed"
    pd.testing.assert_frame_equal(fit.varcorr, eager.varcorr)
    ranef = fit.ranef
    group = next(iter(ranef))
    ranef[group].iloc[:, 0] = 0.0
    del ranef[group]
    pd.testing.assert_frame_equal(fit.ranef[group], eager.ranef[group])
    frame = fit.ranef_frame()
    frame["condval"] = 0.0
    pd.testing.assert_frame_equal(fit.ranef_frame(), eager.ranef_frame())
    summary = fit.summary()
    summary.fixed.iloc[0, 0] = 0.0
    summary.random.iloc[0, 0] = "x"
    summary.criteria.iloc[0] = 0.0
    summary.ngroups.clear()
    assert str(fit.summary()) == str(eager.summary())
    dataset = fit.to_xarray()
    dataset["beta"].values[0] = 0.0
    dataset.attrs["method"] = "changed"
    assert fit.to_xarray().identical(eager.to_xarray())
    covs = fit.covariances()
    covs[0][0, 0] = -1.0
    covs.clear()
    for a, b in zip(fit.covariances(), eager.covariances(), strict=True):
        np.testing.assert_array_equal(a, b)
