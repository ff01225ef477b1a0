"""t and F tests of fixed effects with small-sample df, as lmerTest.

:func:`coefficient_table` is lmerTest's ``summary`` table (one t test per
coefficient), :func:`contrast_test` its ``contest`` (one row of ``L``: a t
test; several: an F test) and :func:`type3_anova` its ``anova(fit, type =
"III")``. The df come from :mod:`hiermodels.mle.ddf`; ``"asymptotic"``
gives z and Wald χ²/q tests with infinite denominator df, the only kind a
GLMM has.

Type-III hypotheses are those of SAS and lmerTest: a term's effects under
sum-to-zero coding of every factor, whatever coding the model used, so a
main effect is averaged over the levels of the factors it interacts with
(a covariate interacting with it is held at 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from hiermodels.mle.ddf import (
    DdfMethod,
    ProfiledSatterthwaite,
    SmallSampleLMM,
    check_ddf,
    small_sample,
)

if TYPE_CHECKING:
    from hiermodels.design.design import Design
    from hiermodels.mle.results import MixedFit

__all__ = [
    "T_COLUMNS",
    "F_COLUMNS",
    "coefficient_table",
    "contrast_test",
    "default_ddf",
    "f_test",
    "t_tests",
    "type3_anova",
    "type3_hypotheses",
]

#: Columns of a table of t (or z) tests.
T_COLUMNS = ("estimate", "se", "df", "statistic", "p_value")
#: Columns of a table of F tests.
F_COLUMNS = ("sum_sq", "mean_sq", "num_df", "den_df", "statistic", "p_value")

#: lmerTest's relative tolerance on the eigenvalues of ``L Φ Lᵀ``.
_RANK_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


def default_ddf(fit: MixedFit) -> DdfMethod:
    """``"satterthwaite"`` for a linear mixed model, ``"asymptotic"`` for a GLMM."""
    return "satterthwaite" if fit.has_residual else "asymptotic"


def _dense(lmm: SmallSampleLMM | ProfiledSatterthwaite) -> SmallSampleLMM:
    """The dense form, which :func:`check_ddf` guarantees for Kenward–Roger."""
    if not isinstance(lmm, SmallSampleLMM):
        raise TypeError("Kenward-Roger needs the dense form of the fit")
    return lmm


def t_tests(
    fit: MixedFit, contrasts: ArrayLike, ddf: DdfMethod, rhs: ArrayLike = 0.0
) -> pd.DataFrame:
    """A t (or z) test of every row of ``contrasts``.

    Parameters
    ----------
    fit : MixedFit
    contrasts : array_like
        ``(m, p)`` weights of the fixed effects, one contrast per row.
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}
        The df method (Kenward–Roger also adjusts the SE, as pbkrtest).
    rhs : array_like
        The contrasts' values under the null hypothesis (scalar or ``(m,)``).

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate, se, df, statistic, p_value``, one row per
        contrast; ``df`` is ``inf`` for ``"asymptotic"`` (z tests).
    """
    ddf = check_ddf(fit, ddf)
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    _check_width(fit, L)
    null = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],))
    estimate = L @ fit.beta
    if ddf == "asymptotic":
        variance = np.einsum("ia,ab,ib->i", L, fit.vcov_beta, L)
        df = np.full(L.shape[0], np.inf)
    else:
        lmm = small_sample(fit)
        if ddf == "kenward-roger":
            dense = _dense(lmm)
            variance = np.einsum("ia,ab,ib->i", L, dense.vcov_adjusted, L)
            df = np.array([dense.kenward_roger(row[None, :])[0] for row in L])
        else:
            variance = np.einsum("ia,ab,ib->i", L, lmm.vcov, L)
            df = np.array([lmm.satterthwaite_df(row) for row in L])
    se = np.sqrt(variance)
    statistic = (estimate - null) / se
    p_value = 2.0 * np.where(
        np.isinf(df), stats.norm.sf(np.abs(statistic)), stats.t.sf(np.abs(statistic), df)
    )
    table = pd.DataFrame(
        {"estimate": estimate, "se": se, "df": df, "statistic": statistic, "p_value": p_value}
    )
    table.attrs.update(ddf=ddf, test="z" if ddf == "asymptotic" else "t")
    return table


def coefficient_table(fit: MixedFit, ddf: DdfMethod | None = None) -> pd.DataFrame:
    """One t (or z) test per fixed effect, lmerTest's ``summary(fit)$coefficients``.

    Parameters
    ----------
    fit : MixedFit
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
        Default: :func:`default_ddf`.

    Returns
    -------
    pandas.DataFrame
        Index the coefficient names; columns ``estimate, se, df, statistic,
        p_value``. ``attrs``: ``ddf`` and ``test`` (``"t"`` or ``"z"``).
    """
    ddf = default_ddf(fit) if ddf is None else ddf
    table = t_tests(fit, np.eye(fit.beta.size), ddf)
    table.index = pd.Index(list(fit.design.fixed_names), name="coef")
    return table


def contrast_test(
    fit: MixedFit, contrasts: ArrayLike, ddf: DdfMethod | None = None, rhs: ArrayLike = 0.0
) -> pd.DataFrame:
    """Test ``L β = rhs``: a t test for one row, an F test for several (lmerTest's ``contest``).

    Parameters
    ----------
    fit : MixedFit
    contrasts : array_like
        ``L``, ``(p,)`` or ``(m, p)``, columns in ``fit.design.fixed_names``
        order; a :class:`pandas.DataFrame` or :class:`pandas.Series` is
        aligned on those names.
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
        Default: :func:`default_ddf`.
    rhs : array_like
        ``L β`` under the null hypothesis (scalar or one value per row).

    Returns
    -------
    pandas.DataFrame
        One row. For one contrast: ``estimate, se, df, statistic, p_value``
        (a t test; z for ``"asymptotic"``). For several: ``sum_sq,
        mean_sq, num_df, den_df, statistic, p_value`` (an F test; lmerTest's
        ``contest(joint = TRUE)``). ``attrs``: ``ddf`` and ``test``.
    """
    ddf = check_ddf(fit, default_ddf(fit) if ddf is None else ddf)
    L = _aligned(fit, contrasts)
    if L.shape[0] == 1:
        return t_tests(fit, L, ddf, rhs)
    table = pd.DataFrame([f_test(fit, L, ddf, rhs)], columns=list(F_COLUMNS))
    table.attrs.update(ddf=ddf, test="F")
    return table


def f_test(fit: MixedFit, L: np.ndarray, ddf: DdfMethod, rhs: ArrayLike = 0.0) -> dict[str, float]:
    """The F test of ``L β = rhs`` as lmerTest's ``contestMD``.

    Satterthwaite: ``L Φ Lᵀ`` is diagonalised, directions with eigenvalues
    below ``√ε`` times the largest dropped, and the denominator df combine
    the df of the remaining directions. Kenward–Roger: pbkrtest's
    ``KRmodcomp`` (the Wald statistic with ``Φ_A``, scaled). Asymptotic: the
    Wald statistic over the number of rows, with infinite denominator df.

    Returns
    -------
    dict
        ``sum_sq, mean_sq, num_df, den_df, statistic, p_value``; the sums of
        squares are lmerTest's, ``F σ²`` per numerator df.
    """
    ddf = check_ddf(fit, ddf)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    _check_width(fit, L)
    null = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],))
    beta = fit.beta - np.linalg.pinv(L) @ null if np.any(null != 0.0) else fit.beta
    sigma2 = fit.sigma**2 if fit.has_residual else 1.0
    if ddf == "kenward-roger":
        lmm = _dense(small_sample(fit))
        num_df = int(np.linalg.matrix_rank(L))
        if num_df < L.shape[0]:
            if np.any(null != 0.0):
                raise ValueError(
                    "the Kenward-Roger F test of rank-deficient contrasts needs rhs = 0"
                )
            # the test depends on L only through its row space
            L = np.linalg.svd(L)[2][:num_df]
        centred = L @ beta
        wald = centred @ np.linalg.solve(L @ lmm.vcov_adjusted @ L.T, centred) / num_df
        den_df, scaling = lmm.kenward_roger(L)
        statistic = scaling * wald
        return _f_row(wald * sigma2, num_df, den_df, statistic)
    vcov = fit.vcov_beta if ddf == "asymptotic" else small_sample(fit).vcov
    values, vectors = np.linalg.eigh(L @ vcov @ L.T)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    kept = values > max(_RANK_TOLERANCE * values[0], 0.0)
    num_df = int(kept.sum())
    if num_df == 0:
        raise ValueError("the contrasts have zero variance: nothing to test")
    rotated = (vectors.T @ L)[kept]
    variances = values[kept]
    statistic = float(np.sum((rotated @ beta) ** 2 / variances) / num_df)
    if ddf == "asymptotic":
        den_df = np.inf
    else:
        nu = np.array([small_sample(fit).satterthwaite_df(row) for row in rotated])
        den_df = _combined_df(nu)
    return _f_row(statistic * sigma2, num_df, den_df, statistic)


def _f_row(mean_sq: float, num_df: int, den_df: float, statistic: float) -> dict[str, float]:
    p_value = (
        stats.chi2.sf(statistic * num_df, num_df)
        if np.isinf(den_df)
        else stats.f.sf(statistic, num_df, den_df)
    )
    return {
        "sum_sq": float(mean_sq * num_df),
        "mean_sq": float(mean_sq),
        "num_df": num_df,
        "den_df": float(den_df),
        "statistic": float(statistic),
        "p_value": float(p_value),
    }


def _combined_df(nu: np.ndarray) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of a sum of independent F(1, ν_m) terms."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(np.mean(nu))
    if np.any(nu <= 2.0):
        return 2.0
    expected = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * expected / (expected - nu.size)


def type3_anova(fit: MixedFit, ddf: DdfMethod | None = None) -> pd.DataFrame:
    """Type-III F tests of every fixed-effect term, lmerTest's ``anova(fit, type = "III")``.

    Not to be confused with :func:`hiermodels.mle.anova.anova`, the
    likelihood-ratio comparison of nested fits.

    Parameters
    ----------
    fit : MixedFit
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
        Default: :func:`default_ddf`.

    Returns
    -------
    pandas.DataFrame
        Index the terms (the intercept has none); columns ``sum_sq,
        mean_sq, num_df, den_df, statistic, p_value``. ``attrs``: ``ddf``,
        ``test`` (``"F"``) and ``hypotheses``, each term's ``L``.

    Raises
    ------
    ValueError
        When a term's type-III hypothesis is not defined by the coding (see
        :func:`type3_hypotheses`).
    """
    ddf = check_ddf(fit, default_ddf(fit) if ddf is None else ddf)
    hypotheses = type3_hypotheses(fit.design)
    rows = [f_test(fit, L, ddf) for L in hypotheses.values()]
    table = pd.DataFrame(
        rows, index=pd.Index(list(hypotheses), name="term"), columns=list(F_COLUMNS)
    )
    table.attrs.update(ddf=ddf, test="F", hypotheses=hypotheses)
    return table


def type3_hypotheses(design: Design) -> dict[str, np.ndarray]:
    """Each fixed-effect term's type-III hypothesis matrix in the model's coding.

    Terms that multiply the same covariates are re-coded together: their
    columns are evaluated on every combination of their factors' levels
    (covariates at 1), re-expressed in sum-to-zero coding, and a term's
    hypothesis is that its sum-to-zero coefficients vanish. This equals
    lmerTest's containment construction when the formula is hierarchical.

    Parameters
    ----------
    design : Design

    Returns
    -------
    dict of str to numpy.ndarray
        Term name → ``(rank, p)`` matrix ``L``; the intercept is left out.

    Raises
    ------
    ValueError
        When columns were dropped for rank deficiency, a factor is not a
        column or ``C(column)``, or a term's marginal terms are missing from
        the formula (its type-III hypothesis then depends on the coding).
    """
    if design.dropped_columns:
        raise ValueError(
            f"type-III tests need a full-rank coding; columns {list(design.dropped_columns)} "
            "were dropped for rank deficiency"
        )
    spec = _model_spec(design)
    categorical = {
        name: list(state["categories"])
        for name, (kind, state) in spec.encoder_state.items()
        if getattr(kind, "value", kind) == "categorical"
    }
    groups: dict[tuple[str, ...], list[Any]] = {}
    for term in spec.terms:
        numeric = tuple(sorted(f.expr for f in term.factors if _is_numeric(f, categorical)))
        groups.setdefault(numeric, []).append(term)
    p = len(design.fixed_names)
    hypotheses: dict[str, np.ndarray] = {}
    for numeric, terms in groups.items():
        for name, L_group in _group_hypotheses(design, spec, terms, numeric, categorical):
            L = np.zeros((L_group.shape[0], p))
            columns = [c for term in terms for c in spec.term_indices[term]]
            L[:, columns] = L_group
            hypotheses[name] = L
    order = [str(term) for term in spec.terms if str(term) in hypotheses]
    return {name: hypotheses[name] for name in order}


def _model_spec(design: Design) -> Any:
    spec = design.fixed_model_spec
    return spec.resolve() if hasattr(spec, "resolve") else spec


def _is_numeric(factor: Any, categorical: dict[str, list[Any]]) -> bool:
    return factor.expr not in categorical and factor.expr != "1"


def _group_hypotheses(
    design: Design,
    spec: Any,
    terms: Sequence[Any],
    numeric: tuple[str, ...],
    categorical: dict[str, list[Any]],
) -> list[tuple[str, np.ndarray]]:
    """The type-III ``L`` (over the group's columns) of every term in one covariate group."""
    factor_names = list(
        dict.fromkeys(f.expr for term in terms for f in term.factors if f.expr in categorical)
    )
    cells = list(itertools.product(*(categorical[name] for name in factor_names)))
    grid = _cell_frame(spec, factor_names, cells)
    from hiermodels.design.newdata import fixed_matrix_for

    columns = [c for term in terms for c in spec.term_indices[term]]
    treatment = fixed_matrix_for(design, grid)[:, columns]
    if not np.any(treatment):
        raise ValueError(
            f"the covariates {list(numeric)} evaluate to 0 at 1: type-III hypotheses of "
            "their terms cannot be formed"
        )
    sum_blocks = []
    owners: list[str] = []
    for term in terms:
        block = np.ones((len(cells), 1))
        for f in term.factors:
            if f.expr in categorical:
                position = factor_names.index(f.expr)
                block = _row_kron(block, _sum_coding(categorical[f.expr], cells, position))
        sum_blocks.append(block)
        owners += [str(term)] * block.shape[1]
    summed = np.hstack(sum_blocks)
    to_sum = np.linalg.lstsq(summed, treatment, rcond=None)[0]
    same_span = np.linalg.matrix_rank(summed) == summed.shape[1] == treatment.shape[
        1
    ] and np.allclose(summed @ to_sum, treatment, atol=1e-9 * max(1.0, np.abs(treatment).max()))
    if not same_span:
        raise ValueError(
            f"the terms {[str(t) for t in terms]} do not include all their marginal terms: "
            "their type-III hypotheses depend on the coding; write the formula "
            "hierarchically (e.g. a * b rather than a + a:b)"
        )
    owner = np.array(owners)
    return [
        (str(term), to_sum[owner == str(term)])
        for term in terms
        if str(term) != "1" and (owner == str(term)).any()
    ]


def _cell_frame(spec: Any, factor_names: list[str], cells: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Data rows giving every factor each cell's level and every other column the value 1."""
    columns: dict[str, Any] = {}
    data_columns = {str(v) for v in spec.required_variables}
    for position, name in enumerate(factor_names):
        variables = [
            str(v) for v in spec.factor_variables[_factor(spec, name)] if str(v) in data_columns
        ]
        if len(variables) != 1:
            raise ValueError(
                f"type-III tests need factors of one column; {name!r} uses {variables}"
            )
        columns[variables[0]] = [cell[position] for cell in cells]
    for column in data_columns:
        columns.setdefault(column, np.ones(len(cells)))
    return pd.DataFrame(columns)


def _factor(spec: Any, name: str) -> Any:
    return next(f for term in spec.terms for f in term.factors if f.expr == name)


def _sum_coding(levels: list[Any], cells: list[tuple[Any, ...]], position: int) -> np.ndarray:
    """Sum-to-zero contrast columns of one factor at every cell (the last level −1)."""
    k = len(levels)
    coding = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    index = {level: i for i, level in enumerate(levels)}
    return coding[[index[cell[position]] for cell in cells]]


def _row_kron(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, :, None] * b[:, None, :]).reshape(a.shape[0], -1)


def _aligned(fit: MixedFit, contrasts: ArrayLike) -> np.ndarray:
    names = list(fit.design.fixed_names)
    if isinstance(contrasts, pd.Series):
        contrasts = contrasts.to_frame().T
    if isinstance(contrasts, pd.DataFrame):
        unknown = sorted(set(contrasts.columns) - set(names))
        if unknown:
            raise ValueError(f"contrast columns {unknown} are not fixed effects {names}")
        contrasts = contrasts.reindex(columns=names, fill_value=0.0).to_numpy()
    L = np.atleast_2d(np.asarray(contrasts, dtype=float))
    _check_width(fit, L)
    return L


def _check_width(fit: MixedFit, L: np.ndarray) -> None:
    if L.ndim != 2 or L.shape[1] != fit.beta.size:
        raise ValueError(
            f"a contrast needs one weight per fixed effect ({fit.beta.size}), got shape {L.shape}"
        )
