"""Small-sample inference for linear mixed models: Satterthwaite and Kenward–Roger.

Both methods describe the marginal covariance of the response as linear in
its covariance elements,

    V = Σ_k τ_k G_k,

one ``τ_k`` per variance or covariance of a random-effect block (``G_k`` the
matching ``Z_j Z_kᵀ + Z_k Z_jᵀ``, or ``Z_j Z_jᵀ`` on the diagonal) and the
residual variance last (``G = I``). ``V`` and ``V⁻¹`` are dense ``n × n``
(each ``G_k`` acts through its sparse ``Z`` factors), so this form serves
fits of up to :data:`SMALL_SAMPLE_MAX_NOBS` rows held in memory. Above that,
and for fits from summed statistics, Satterthwaite's df are taken as
lmerTest takes them, by numerical derivatives in ``(θ, σ)`` of the deviance
and of the fixed effects' covariance, which need the cross products only
(:class:`ProfiledSatterthwaite`); Kenward–Roger is offered with the dense form
only.

**Satterthwaite** follows lmerTest (Kuznetsova, Brockhoff & Christensen
2017): for a contrast ``L`` the df are ``2 (L C Lᵀ)² / (gᵀ A g)``, with
``C = (Xᵀ V⁻¹ X)⁻¹``, ``g`` the gradient of ``L C Lᵀ`` in the variance
parameters and ``A`` their asymptotic covariance, twice the inverse Hessian
of the REML (or ML) deviance. lmerTest takes both derivatives numerically in
``(θ, σ)``; here they are exact, in ``τ``, and carried to ``(θ, σ)`` by the
chain rule, so that the df agree with lmerTest also at the boundary (at
``θ = 0`` a variance's gradient in ``θ`` vanishes, in ``τ`` it does not).

**Kenward–Roger** follows pbkrtest's ``vcovAdj`` and ``Lb_ddf``
(Kenward & Roger 1997; Halekoh & Højsgaard 2014): the adjusted covariance
``Φ_A`` of the fixed effects, from the expected REML information in ``τ``,
and the scaled F statistic's df.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
from scipy import linalg

from hiermodels.errors import ConvergenceWarning

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit
    from hiermodels.mle.varpar import VarparDeviance

__all__ = [
    "SMALL_SAMPLE_MAX_NOBS",
    "DDF_METHODS",
    "DdfMethod",
    "ProfiledSatterthwaite",
    "SmallSampleLMM",
    "check_ddf",
    "small_sample",
]

DdfMethod = Literal["satterthwaite", "kenward-roger", "asymptotic"]

#: The denominator-df methods :meth:`MixedFit.fixef_table` accepts.
DDF_METHODS: tuple[str, ...] = ("satterthwaite", "kenward-roger", "asymptotic")

#: Largest number of observations for the dense ``n × n`` df computations
#: (emmeans' ``lmerTest.limit`` and ``pbkrtest.limit`` default to the same).
SMALL_SAMPLE_MAX_NOBS = 3000

#: Relative step of the central differences of :class:`ProfiledSatterthwaite`
#: (``θ`` entries below :data:`THETA_STEP_FLOOR` step from the floor instead).
DIFFERENCE_STEP = 1e-2
THETA_STEP_FLOOR = 1e-2

#: lmerTest's tolerance on the eigenvalues of the deviance Hessian.
HESSIAN_EIGEN_TOLERANCE = 1e-8
#: pbkrtest's threshold below which the information matrix is inverted generally.
INFORMATION_CONDITION = 1e-10


def check_ddf(fit: MixedFit, ddf: str) -> DdfMethod:
    """Check that the df method ``ddf`` applies to ``fit``.

    Parameters
    ----------
    fit : MixedFit
    ddf : str
        ``"satterthwaite"``, ``"kenward-roger"`` or ``"asymptotic"``.

    Returns
    -------
    str
        ``ddf``, checked.

    Raises
    ------
    ValueError
        For an unknown method; for Satterthwaite or Kenward–Roger on a model
        without a residual variance (a GLMM: only ``"asymptotic"``); for
        Kenward–Roger on an ML fit (pbkrtest's method is defined for REML).
    """
    if ddf not in DDF_METHODS:
        raise ValueError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, got {ddf!r}")
    if ddf != "asymptotic" and not fit.has_residual:
        raise ValueError(
            f"ddf={ddf!r} applies to linear mixed models; a {fit.design.family.name} GLMM "
            "has no residual variance to count df from: use ddf='asymptotic' (z tests)"
        )
    if ddf == "kenward-roger" and not _dense_form_applies(fit):
        held = (
            "a fit from a Dask DataFrame holds its rows' summed cross products only"
            if fit.design.has_root_rows
            else f"{fit.nobs} observations is more than {SMALL_SAMPLE_MAX_NOBS}"
        )
        raise ValueError(
            f"the Kenward-Roger method works with dense n x n matrices of the rows: {held}; "
            "use ddf='satterthwaite' or ddf='asymptotic'"
        )
    if ddf == "kenward-roger" and fit.method != "REML":
        raise ValueError(
            "the Kenward-Roger method is defined for REML fits; refit with method='REML' "
            "or use ddf='satterthwaite'"
        )
    return ddf  # type: ignore[return-value]


def _dense_form_applies(fit: MixedFit) -> bool:
    """Whether the fit has its rows, few enough for the dense ``n × n`` form."""
    return not fit.design.has_root_rows and fit.nobs <= SMALL_SAMPLE_MAX_NOBS


def small_sample(fit: MixedFit) -> SmallSampleLMM | ProfiledSatterthwaite:
    """The small-sample machinery of a Gaussian fit, made once per fit.

    Parameters
    ----------
    fit : MixedFit
        A REML or ML fit of a linear mixed model.

    Returns
    -------
    SmallSampleLMM or ProfiledSatterthwaite
        The dense form for up to :data:`SMALL_SAMPLE_MAX_NOBS` rows held in
        memory (Satterthwaite and Kenward–Roger); otherwise Satterthwaite from
        the cross products.
    """
    if _dense_form_applies(fit):
        return fit._memo("small_sample", lambda: SmallSampleLMM.of(fit))
    return fit._memo("small_sample", lambda: ProfiledSatterthwaite.of(fit))


class _Satterthwaite:
    """Satterthwaite's df from ``Φ``, its gradients and the deviance Hessian in ``φ``."""

    @property
    def vcov(self) -> np.ndarray:
        """``Φ``, the covariance of the fixed effects."""
        raise NotImplementedError

    @property
    def vcov_gradients(self) -> np.ndarray:
        """``∂Φ/∂φ_m`` for lmerTest's ``φ = (θ, σ)``, shape ``(len(φ), p, p)``."""
        raise NotImplementedError

    @property
    def deviance_hessian(self) -> np.ndarray:
        """Hessian of the REML (or ML) deviance in ``φ = (θ, σ)``, β profiled out."""
        raise NotImplementedError

    @cached_property
    def varpar_covariance(self) -> np.ndarray:
        """Asymptotic covariance of ``φ``: twice the Moore–Penrose inverse of the Hessian.

        As lmerTest: eigenvalues below ``−1e-8`` or within ``±1e-8`` of zero
        raise a :class:`~hiermodels.errors.ConvergenceWarning`, and only the
        positive ones are inverted.
        """
        values, vectors = np.linalg.eigh(self.deviance_hessian)
        negative = values < -HESSIAN_EIGEN_TOLERANCE
        positive = values > HESSIAN_EIGEN_TOLERANCE
        if negative.any():
            warnings.warn(
                "the deviance Hessian in the variance parameters has "
                f"{int(negative.sum())} negative eigenvalue(s) "
                f"({', '.join(f'{v:.1e}' for v in values[negative])}): the fit may not "
                "have converged, and the Satterthwaite df ignore those directions",
                ConvergenceWarning,
                stacklevel=4,
            )
        if (~negative & ~positive).any():
            warnings.warn(
                "the deviance Hessian in the variance parameters has "
                f"{int((~negative & ~positive).sum())} eigenvalue(s) close to zero: the fit "
                "may not have converged, and the Satterthwaite df ignore those directions",
                ConvergenceWarning,
                stacklevel=4,
            )
        kept = vectors[:, positive]
        return 2.0 * (kept / values[positive]) @ kept.T

    def satterthwaite_df(self, contrast: np.ndarray) -> float:
        """Satterthwaite df of the single contrast ``contrast`` (length ``p``)."""
        variance = contrast @ self.vcov @ contrast
        gradient = np.einsum("a,mab,b->m", contrast, self.vcov_gradients, contrast)
        return float(2.0 * variance**2 / (gradient @ self.varpar_covariance @ gradient))


def _richardson(differences: Callable[[np.ndarray], np.ndarray], steps: np.ndarray) -> np.ndarray:
    """Central differences at ``steps`` and half of them, combined to cancel the ``h²`` error."""
    return (4.0 * differences(steps / 2.0) - differences(steps)) / 3.0


@dataclass(frozen=True, eq=False)
class ProfiledSatterthwaite(_Satterthwaite):
    """Satterthwaite's df from the cross products, by lmerTest's numerical derivatives.

    The deviance ``d(θ, σ)`` and the covariance ``Φ(θ, σ) = σ² (R_XᵀR_X)⁻¹`` of
    the fixed effects (:class:`~hiermodels.mle.varpar.VarparDeviance`) are
    differenced centrally in every entry of ``φ = (θ, σ)``, with steps of
    :data:`DIFFERENCE_STEP` relative to each entry and half of them combined
    by Richardson's extrapolation (steps large against the evaluations'
    round-off, error of order ``h⁴``); ``Φ``'s derivative in ``σ`` is exact.
    Each evaluation is one factorisation of the fit's size, whatever the
    number of rows.

    Attributes
    ----------
    varpar : VarparDeviance
        The deviance and ``Φ`` as functions of ``(θ, σ)``.
    theta : numpy.ndarray
        The estimates of ``θ``.
    sigma : float
        The estimate of ``σ``.
    """

    varpar: VarparDeviance
    theta: np.ndarray
    sigma: float

    @classmethod
    def of(cls, fit: MixedFit) -> ProfiledSatterthwaite:
        """The numerical Satterthwaite machinery of ``fit`` at its estimates."""
        if not fit.has_residual or fit.method not in ("REML", "ML"):
            raise ValueError("small-sample df are defined for REML or ML fits of an LMM")
        from hiermodels.mle.varpar import VarparDeviance

        varpar = VarparDeviance.of(fit.design, reml=fit.method == "REML")
        return cls(varpar, np.asarray(fit.theta, dtype=float), float(fit.sigma))

    @cached_property
    def _phi(self) -> np.ndarray:
        return np.append(self.theta, self.sigma)

    @cached_property
    def _steps(self) -> np.ndarray:
        floors = np.append(np.full(self.theta.size, THETA_STEP_FLOOR), self.sigma)
        return DIFFERENCE_STEP * np.maximum(np.abs(self._phi), floors)

    def _deviance(self, phi: np.ndarray) -> float:
        return self.varpar(phi[:-1], float(phi[-1]))

    @cached_property
    def vcov(self) -> np.ndarray:
        """``Φ``, the covariance of the fixed effects at the estimates."""
        return self.varpar.vcov_beta(self.theta, self.sigma)

    def _vcov_gradients_at(self, steps: np.ndarray) -> np.ndarray:
        gradients = np.empty((self._phi.size, *self.vcov.shape))
        for m, h in enumerate(steps[:-1]):
            up, down = self.theta.copy(), self.theta.copy()
            up[m] += h
            down[m] -= h
            gradients[m] = (
                self.varpar.vcov_beta(up, self.sigma) - self.varpar.vcov_beta(down, self.sigma)
            ) / (2.0 * h)
        gradients[-1] = 2.0 * self.vcov / self.sigma
        return gradients

    @cached_property
    def vcov_gradients(self) -> np.ndarray:
        """``∂Φ/∂φ_m`` for lmerTest's ``φ = (θ, σ)``, shape ``(len(φ), p, p)``."""
        return _richardson(self._vcov_gradients_at, self._steps)

    @cached_property
    def _centre(self) -> float:
        """The deviance at the estimates, shared by both step sizes."""
        return self._deviance(self._phi)

    def _deviance_hessian_at(self, steps: np.ndarray) -> np.ndarray:
        phi = self._phi
        k = phi.size
        centre = self._centre
        hessian = np.empty((k, k))

        def at(*moves: tuple[int, float]) -> float:
            point = phi.copy()
            for index, sign in moves:
                point[index] += sign * steps[index]
            return self._deviance(point)

        for i in range(k):
            hessian[i, i] = (at((i, 1.0)) - 2.0 * centre + at((i, -1.0))) / steps[i] ** 2
            for j in range(i):
                value = (
                    at((i, 1.0), (j, 1.0))
                    - at((i, 1.0), (j, -1.0))
                    - at((i, -1.0), (j, 1.0))
                    + at((i, -1.0), (j, -1.0))
                ) / (4.0 * steps[i] * steps[j])
                hessian[i, j] = hessian[j, i] = value
        return hessian

    @cached_property
    def deviance_hessian(self) -> np.ndarray:
        """Hessian of the REML (or ML) deviance in ``φ = (θ, σ)``, β profiled out."""
        hessian = _richardson(self._deviance_hessian_at, self._steps)
        if not np.all(np.isfinite(hessian)):
            raise ValueError(
                "the deviance cannot be evaluated around the estimates (a factorisation "
                "failed next to them): no Satterthwaite df; use ddf='asymptotic'"
            )
        return hessian


def _covariance_elements(
    fit: MixedFit,
) -> tuple[list[tuple[sp.csr_matrix, sp.csr_matrix]], list[tuple[int, int, int]]]:
    """Every random-effect covariance element's ``(Z_j, Z_k)`` and its ``(block, j, k)``.

    ``Z_j`` is the ``n × levels`` matrix of term ``j`` of a block; the
    element's ``G`` is ``Z_j Z_kᵀ + Z_k Z_jᵀ`` (``Z_j Z_jᵀ`` on the
    diagonal). Elements run block by block in θ order, each block's lower
    triangle column by column (θ's own order); the residual is not included.
    """
    pairs: list[tuple[sp.csr_matrix, sp.csr_matrix]] = []
    where: list[tuple[int, int, int]] = []
    for b, block in enumerate(fit.layout.blocks):
        n = block.codes.shape[0]
        columns = [
            sp.csr_matrix((block.X[:, j], (np.arange(n), block.codes)), shape=(n, block.n_levels))
            for j in range(block.n_terms)
        ]
        for k in range(block.n_terms):
            for j in range(k, block.n_terms):
                pairs.append((columns[j], columns[k]))
                where.append((b, j, k))
    return pairs, where


@dataclass(frozen=True, eq=False)
class SmallSampleLMM(_Satterthwaite):
    """Covariance-element form of a fitted LMM, for Satterthwaite and Kenward–Roger df.

    Attributes
    ----------
    X : numpy.ndarray
        ``(n, p)`` fixed-effects matrix.
    y : numpy.ndarray
        ``(n,)`` response, less the offset.
    factors : tuple of (scipy.sparse.csr_matrix, scipy.sparse.csr_matrix)
        ``(Z_j, Z_k)`` of every random-effect covariance element (see
        :func:`_covariance_elements`); the residual's ``G = W⁻¹`` follows them.
    tau : numpy.ndarray
        The covariance elements at the estimates (the residual variance last).
    tau_jacobian : numpy.ndarray
        ``∂τ/∂φ`` with ``φ = (θ, σ)``, lmerTest's variance parameters.
    tau_hessians : numpy.ndarray
        ``(len(τ), len(φ), len(φ))``: ``∂²τ_k/∂φ∂φ``.
    reml : bool
        Whether the deviance is the REML criterion (else the ML deviance).
    residual_scale : numpy.ndarray or None
        ``1/w`` of a fit with precision weights ``w`` (the diagonal of the
        residual's ``G``); ``None`` for ``G = I``.
    """

    X: np.ndarray
    y: np.ndarray
    factors: tuple[tuple[sp.csr_matrix, sp.csr_matrix], ...]
    tau: np.ndarray
    tau_jacobian: np.ndarray
    tau_hessians: np.ndarray
    reml: bool
    residual_scale: np.ndarray | None = None

    @classmethod
    def of(cls, fit: MixedFit) -> SmallSampleLMM:
        """Build the covariance-element form of ``fit`` at its estimates."""
        if not fit.has_residual or fit.method not in ("REML", "ML"):
            raise ValueError("small-sample df are defined for REML or ML fits of an LMM")
        if not _dense_form_applies(fit):
            raise ValueError(
                f"the dense n x n form needs at most {SMALL_SAMPLE_MAX_NOBS} rows held in "
                "memory; use ProfiledSatterthwaite"
            )
        design = fit.design
        y = design.y if design.offset is None else design.y - design.offset
        factors, where = _covariance_elements(fit)
        tau, jacobian, hessians = _tau_derivatives(fit, where)
        return cls(
            X=np.asarray(design.X, dtype=float),
            y=np.asarray(y, dtype=float),
            factors=tuple(factors),
            tau=tau,
            tau_jacobian=jacobian,
            tau_hessians=hessians,
            reml=fit.method == "REML",
            residual_scale=None if design.weights is None else 1.0 / design.weights,
        )

    # ------------------------------------------------------------ shared pieces
    @property
    def n_elements(self) -> int:
        """Number of covariance elements, the residual variance included."""
        return len(self.factors) + 1

    def g_times(self, k: int, matrix: np.ndarray) -> np.ndarray:
        """``G_k @ matrix`` through the element's factors (``O(n · levels)`` per column)."""
        if k == len(self.factors):
            if self.residual_scale is None:
                return matrix
            return self.residual_scale.reshape(-1, *(1,) * (matrix.ndim - 1)) * matrix
        a, b = self.factors[k]
        product = a @ (b.T @ matrix)
        return product if a is b else product + b @ (a.T @ matrix)

    @cached_property
    def _v_inverse(self) -> np.ndarray:
        n = self.X.shape[0]
        V = self.tau[-1] * (
            np.eye(n) if self.residual_scale is None else np.diag(self.residual_scale)
        )
        for tau, (a, b) in zip(self.tau[:-1], self.factors, strict=True):
            outer = (a @ b.T).toarray()
            V += tau * (outer if a is b else outer + outer.T)
        factor = linalg.cholesky(V, lower=True)
        inverse, info = linalg.lapack.dpotri(factor, lower=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"the marginal covariance is singular (dpotri info {info})")
        # dpotri fills the lower triangle only
        return np.tril(inverse) + np.tril(inverse, -1).T

    @cached_property
    def _v_inverse_x(self) -> np.ndarray:
        return self._v_inverse @ self.X

    @cached_property
    def vcov(self) -> np.ndarray:
        """``Φ = (Xᵀ V⁻¹ X)⁻¹``, the covariance of the fixed effects."""
        return np.linalg.inv(self.X.T @ self._v_inverse_x)

    @cached_property
    def _projection(self) -> np.ndarray:
        """The REML projection ``P = V⁻¹ − V⁻¹X Φ XᵀV⁻¹``."""
        vix = self._v_inverse_x
        return self._v_inverse - vix @ self.vcov @ vix.T

    @cached_property
    def _g_v_inverse_x(self) -> tuple[np.ndarray, ...]:
        """``G_k V⁻¹ X`` for every element."""
        return tuple(self.g_times(k, self._v_inverse_x) for k in range(self.n_elements))

    @cached_property
    def _vcov_gradients_tau(self) -> np.ndarray:
        """``∂Φ/∂τ_k = Φ XᵀV⁻¹ G_k V⁻¹X Φ``, shape ``(len(τ), p, p)``."""
        vix = self._v_inverse_x
        return np.stack([self.vcov @ vix.T @ gvx @ self.vcov for gvx in self._g_v_inverse_x])

    # ------------------------------------------------------------ Satterthwaite
    @cached_property
    def vcov_gradients(self) -> np.ndarray:
        """``∂Φ/∂φ_m`` for lmerTest's ``φ = (θ, σ)``, shape ``(len(φ), p, p)``."""
        return np.einsum("kab,km->mab", self._vcov_gradients_tau, self.tau_jacobian)

    @cached_property
    def deviance_hessian(self) -> np.ndarray:
        """Hessian of the REML (or ML) deviance in ``φ = (θ, σ)``, β profiled out."""
        trace_matrix = self._projection if self.reml else self._v_inverse
        py = self._projection @ self.y
        n_tau = self.n_elements
        # Q G_k is the transpose of G_k Q (both symmetric); kept contiguous for the traces
        g_q = [self.g_times(k, trace_matrix) for k in range(n_tau)]
        q_g = [np.ascontiguousarray(m.T) for m in g_q]
        g_py = [self.g_times(k, py) for k in range(n_tau)]
        p_g_py = [self._projection @ g for g in g_py]
        gradient = np.array([np.trace(q_g[k]) - py @ g_py[k] for k in range(n_tau)])
        hessian_tau = np.empty((n_tau, n_tau))
        for k in range(n_tau):
            for m in range(k, n_tau):
                value = -np.vdot(q_g[k], g_q[m]) + 2.0 * g_py[k] @ p_g_py[m]
                hessian_tau[k, m] = hessian_tau[m, k] = value
        J = self.tau_jacobian
        return J.T @ hessian_tau @ J + np.einsum("k,kab->ab", gradient, self.tau_hessians)

    # ------------------------------------------------------------ Kenward-Roger
    @cached_property
    def _kr_pieces(self) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """pbkrtest's ``P`` list, ``W`` (inverse expected information) and ``Φ_A``."""
        phi = self.vcov
        v_inverse = self._v_inverse
        vix = self._v_inverse_x
        n_tau = self.n_elements
        h = [self.g_times(k, v_inverse) for k in range(n_tau)]
        o = list(self._g_v_inverse_x)
        p_list = [-(ok.T @ vix) for ok in o]
        p_list = [(pk + pk.T) / 2.0 for pk in p_list]
        v_inverse_o = [v_inverse @ ok for ok in o]
        q_pairs = {(r, s): o[r].T @ v_inverse_o[s] for r in range(n_tau) for s in range(n_tau)}
        information = np.empty((n_tau, n_tau))
        for r in range(n_tau):
            for s in range(r, n_tau):
                value = (
                    np.sum(h[r].T * h[s])
                    - 2.0 * np.sum(phi * q_pairs[r, s])
                    + np.sum((phi @ p_list[r]) * (p_list[s] @ phi))
                )
                information[r, s] = information[s, r] = value
        condition = np.min(np.abs(np.linalg.eigvalsh(information)))
        w = 2.0 * (
            np.linalg.inv(information)
            if condition > INFORMATION_CONDITION
            else np.linalg.pinv(information)
        )
        w = (w + w.T) / 2.0
        u = np.zeros_like(phi)
        for r in range(n_tau):
            for s in range(n_tau):
                u += w[r, s] * (q_pairs[r, s] - p_list[r] @ phi @ p_list[s])
        adjusted = phi + 2.0 * phi @ u @ phi
        return p_list, w, (adjusted + adjusted.T) / 2.0

    @property
    def vcov_adjusted(self) -> np.ndarray:
        """Kenward–Roger's adjusted covariance ``Φ_A`` of the fixed effects (pbkrtest)."""
        return self._kr_pieces[2].copy()

    def kenward_roger(self, contrasts: np.ndarray) -> tuple[float, float]:
        """Kenward–Roger denominator df and F scaling of the rows of ``contrasts``.

        Parameters
        ----------
        contrasts : numpy.ndarray
            ``(q, p)`` contrast matrix of full row rank.

        Returns
        -------
        ddf : float
            The denominator df (pbkrtest's ``Lb_ddf`` / ``KRmodcomp``).
        scaling : float
            The factor pbkrtest applies to the Wald F statistic computed with
            :attr:`vcov_adjusted`.
        """
        L = np.atleast_2d(contrasts)
        phi = self.vcov
        p_list, w, _ = self._kr_pieces
        theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
        theta_phi = theta @ phi
        u = [theta_phi @ pk @ phi for pk in p_list]
        a1 = a2 = 0.0
        for i in range(len(p_list)):
            for j in range(i, len(p_list)):
                weight = (1.0 if i == j else 2.0) * w[i, j]
                a1 += weight * np.trace(u[i]) * np.trace(u[j])
                a2 += weight * np.sum(u[i] * u[j].T)
        q = np.linalg.matrix_rank(L)
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
        denominator = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2 - g) / denominator
        v0 = 1.0 + c1 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1 = 1.0 - c2 * b
        v2 = 1.0 - c3 * b
        numerator = 1.0 - a2 / q
        ratio = 1.0 if abs(numerator) < 1e-14 and abs(v1) < 1e-14 else numerator / v1
        rho = ratio**2 * v0 / v2 / q
        ddf = 4.0 + (q + 2.0) / (q * rho - 1.0)
        scaling = 1.0 if abs(ddf - 2.0) < 1e-2 else ddf * (1.0 - a2 / q) / (ddf - 2.0)
        return float(ddf), float(scaling)


def _tau_derivatives(
    fit: MixedFit, where: list[tuple[int, int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``τ(φ)`` at the estimates with its first and second derivatives in ``φ = (θ, σ)``.

    A block's elements are ``σ² (T Tᵀ)_jk`` with ``T`` its lower-triangular
    relative factor (``θ`` its entries, column by column); the residual
    variance is ``σ²``.
    """
    theta_layout = fit.layout.theta
    factors = theta_layout.factors(fit.theta)
    n_phi = fit.theta.size + 1
    sigma = fit.sigma
    n_tau = len(where) + 1
    tau = np.empty(n_tau)
    jacobian = np.zeros((n_tau, n_phi))
    hessians = np.zeros((n_tau, n_phi, n_phi))
    # θ index of every factor entry (a, c) of every block
    positions: list[dict[tuple[int, int], int]] = []
    for b, q in enumerate(theta_layout.sizes):
        start = theta_layout.offsets[b]
        entries = [(a, c) for c in range(q) for a in range(c, q)]
        positions.append({entry: start + i for i, entry in enumerate(entries)})
    s = n_phi - 1
    for index, (b, j, k) in enumerate(where):
        T = factors[b]
        relative = float(T[j] @ T[k])
        tau[index] = sigma**2 * relative
        # ∂(T Tᵀ)_jk/∂T_ac = δ_ja T_kc + δ_ka T_jc
        relative_gradient = np.zeros(n_phi)
        for (a, c), m in positions[b].items():
            relative_gradient[m] = (T[k, c] if a == j else 0.0) + (T[j, c] if a == k else 0.0)
        # ∂²(T Tᵀ)_jk/∂T_ac∂T_de = δ_ce (δ_ja δ_kd + δ_ka δ_jd)
        relative_hessian = np.zeros((n_phi, n_phi))
        for (a, c), m in positions[b].items():
            for (d, e), m2 in positions[b].items():
                if c == e:
                    relative_hessian[m, m2] = float(a == j and d == k) + float(a == k and d == j)
        jacobian[index] = sigma**2 * relative_gradient
        jacobian[index, s] = 2.0 * sigma * relative
        hessians[index] = sigma**2 * relative_hessian
        hessians[index, s, :] += 2.0 * sigma * relative_gradient
        hessians[index, :, s] += 2.0 * sigma * relative_gradient
        hessians[index, s, s] = 2.0 * relative
    tau[-1] = sigma**2
    jacobian[-1, s] = 2.0 * sigma
    hessians[-1, s, s] = 2.0
    return tau, jacobian, hessians
