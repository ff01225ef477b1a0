"""Bounded optimisation with a fit log.

Where the objective comes with its analytic gradient (the profiled REML/ML
criterion), a bound-constrained quasi-Newton method reaches the optimum in
few evaluations. lme4 minimises its criteria with BOBYQA
(Powell's bounded quadratic-model method, derivative-free) through
nloptwrap; so do we, through NLopt, for objectives without a gradient, on
request (``optimizer="bobyqa"``), and as the fallback when the quasi-Newton
run cannot confirm its optimum. The :class:`OptSummary` records what
happened, like MixedModels.jl's fit log: optimiser, start, end, objective
values, evaluations, gradient, the stopping reason, any fallback and any
convergence warnings.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import nlopt
import numpy as np

from hiermodels._lazy import moved_names
from hiermodels.errors import ConvergenceWarning
from hiermodels.mle.blas import blas_on_one_thread
from hiermodels.mle.derivatives import (
    finite_difference_gradient,
    finite_difference_hessian,
    hessian_from_gradient,
)

__all__ = [
    "OPTIMIZERS",
    "ConvergenceWarning",
    "KnownCurvature",
    "OptSummary",
    "checked_theta",
    "evaluated_at",
    "minimize_bounded",
    "newton_polish",
    "scaled_gradient",
]

#: ``x → (index, block)``: the Hessian on the coordinates ``index`` at ``x``, known
#: without differencing (see :func:`minimize_bounded`).
KnownCurvature = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_NLOPT_MESSAGES = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "objective reached the stop value",
    nlopt.FTOL_REACHED: "objective changed less than the tolerance",
    nlopt.XTOL_REACHED: "parameters changed less than the tolerance",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
}


#: Largest gradient accepted at an optimum before the fit is flagged (lme4's ``check.conv.grad``).
GRADIENT_TOLERANCE = 2e-3

#: Optimiser names accepted by the fitting functions.
OPTIMIZERS = ("quasi-newton", "bobyqa")


@dataclass(frozen=True)
class OptSummary:
    """The fit log of one optimisation.

    Attributes
    ----------
    optimizer : str
        Algorithm name.
    initial : numpy.ndarray
        Start values.
    final : numpy.ndarray
        Values at the minimum found.
    lower, upper : numpy.ndarray
        Bounds.
    initial_objective, final_objective : float
        Objective at start and end.
    evaluations : int
        Number of objective evaluations.
    converged : bool
        Whether the optimiser stopped on a tolerance (not a limit or error).
    message : str
        The stopping reason.
    elapsed : float
        Wall-clock seconds.
    gradient : numpy.ndarray
        Finite-difference gradient at the end (0 for parameters on a bound
        with the gradient pointing outwards).
    warnings : tuple of str
        Convergence warnings raised.
    fallback : str
        Why the fit fell back to BOBYQA ("" when it did not).
    """

    optimizer: str
    initial: np.ndarray
    final: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    initial_objective: float
    final_objective: float
    evaluations: int
    converged: bool
    message: str
    elapsed: float
    gradient: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warnings: tuple[str, ...] = ()
    fallback: str = ""

    @property
    def gradient_norm(self) -> float:
        """Largest absolute gradient entry of the free parameters at the end."""
        return float(np.max(np.abs(self.gradient), initial=0.0))

    def __str__(self) -> str:
        lines = [
            f"optimizer:          {self.optimizer}",
            f"initial parameters: {np.array2string(self.initial, precision=6)}",
            f"initial objective:  {self.initial_objective:.6f}",
            f"final parameters:   {np.array2string(self.final, precision=6)}",
            f"final objective:    {self.final_objective:.6f}",
            f"evaluations:        {self.evaluations}",
            f"gradient (max abs): {self.gradient_norm:.3g}",
            f"stopped because:    {self.message}",
            f"elapsed:            {self.elapsed:.3f} s",
        ]
        if self.fallback:
            lines.append(f"fallback:           {self.fallback}")
        lines += [f"warning:            {w}" for w in self.warnings]
        return "\n".join(lines)


def _restricted(
    func: Callable[[np.ndarray], float], x: np.ndarray, index: np.ndarray
) -> Callable[[np.ndarray], float]:
    """``func`` as a function of ``x[index]`` alone, the other entries held at ``x``."""

    def restricted(values: np.ndarray) -> float:
        point = x.copy()
        point[index] = values
        return func(point)

    return restricted


def scaled_gradient(
    func: Callable[[np.ndarray], float], x: np.ndarray, grad: np.ndarray, free: np.ndarray
) -> np.ndarray | None:
    """The gradient of the free parameters scaled by the curvature, ``R⁻¹ g`` (``RᵀR = H``).

    lme4's relative convergence check: the gradient measured in units of the
    objective's own curvature does not grow with the number of observations
    or depend on the parameters' units, as the raw gradient does. ``None``
    when the Hessian of the free parameters is not positive definite.
    """
    index = np.flatnonzero(free)
    if index.size == 0:
        return np.zeros(0)
    hess = finite_difference_hessian(_restricted(func, x, index), x[index])
    return _scaled_by(hess, grad[index])


def _scaled_by(hess: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """``R⁻¹ g`` with ``RᵀR = H``; ``None`` when ``H`` is not positive definite."""
    if not np.all(np.isfinite(hess)):
        return None
    try:
        upper = np.linalg.cholesky(hess).T
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(upper)):
        return None
    return np.linalg.solve(upper, grad)


def _pinned(x: np.ndarray, grad: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Parameters on a bound with the gradient pointing outwards: optimal where they are."""
    return ((x <= lower + 1e-8) & (grad > 0)) | ((x >= upper - 1e-8) & (grad < 0))


#: A parameter this close to its lower bound (absolute; θ is on a relative-SD scale)
#: is tried on the bound itself.
_SNAP = 1e-6


def _onto_bounds(
    func: Callable[[np.ndarray], float], x: np.ndarray, value: float, lower: np.ndarray
) -> tuple[np.ndarray, float]:
    """``x`` with parameters within :data:`_SNAP` of their lower bound moved onto it,
    when the criterion there is no higher (to round-off): BOBYQA stops a trust-region
    radius short of a boundary optimum, where the criterion is flat to its last digits."""
    near = (x > lower) & (x - lower <= _SNAP)
    if not near.any():
        return x, value
    trial = np.where(near, lower, x)
    trial_value = func(trial)
    if trial_value <= value + _TIE * (abs(value) + 1.0):
        return trial, trial_value
    return x, value


def newton_polish(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    value: float,
    lower: np.ndarray,
    upper: np.ndarray,
    max_steps: int = 3,
) -> tuple[np.ndarray, float, np.ndarray, int]:
    """Newton steps from a near-optimum on finite-difference derivatives.

    The Hessian of the free parameters (those not :func:`_pinned` to a
    bound) is taken once, at the start: near an optimum it changes too
    little to matter, and it costs ``2k² + 1`` evaluations against the
    gradient's ``2k``. A step is kept only if it lowers the objective;
    stepping stops at the first step that does not, at a step below
    round-off, or where the Hessian is not positive definite.

    Returns
    -------
    x : numpy.ndarray
        The polished point.
    value : float
        The objective there.
    grad : numpy.ndarray
        The finite-difference gradient there.
    evaluations : int
        Objective evaluations spent.
    """
    k = x.size
    grad = finite_difference_gradient(func, x, lower, upper)
    evaluations = 2 * k
    index = np.flatnonzero(~_pinned(x, grad, lower, upper))
    if index.size == 0:
        return x, value, grad, evaluations
    hess = finite_difference_hessian(_restricted(func, x, index), x[index])
    evaluations += 2 * index.size**2 + 1
    try:
        chol = np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return x, value, grad, evaluations
    for _ in range(max_steps):
        step = np.linalg.solve(chol.T, np.linalg.solve(chol, grad[index]))
        # a step below round-off of the parameters changes nothing worth an evaluation
        if np.max(np.abs(step)) <= 1e-12 * max(1.0, float(np.max(np.abs(x[index])))):
            break
        candidate = x.copy()
        candidate[index] -= step
        candidate = np.clip(candidate, lower, upper)
        trial = func(candidate)
        evaluations += 1
        if not trial < value:
            break
        x, value = candidate, trial
        grad = finite_difference_gradient(func, x, lower, upper)
        evaluations += 2 * k
    return x, value, grad, evaluations


def minimize_bounded(
    func: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    *,
    ftol_abs: float = 1e-10,
    xtol_abs: float = 1e-10,
    max_evaluations: int = 100_000,
    gradient_tolerance: float = GRADIENT_TOLERANCE,
    polish: bool = False,
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    optimizer: str = "quasi-newton",
    known_curvature: KnownCurvature | None = None,
    boundary_restart: np.ndarray | None = None,
    resolution: float | None = None,
) -> OptSummary:
    """Minimise ``func`` within bounds and return the fit log.

    Parameters
    ----------
    func : callable
        Objective ``x → float``; ``inf`` marks an infeasible point.
    start : numpy.ndarray
        Start values (clipped into the bounds).
    lower, upper : numpy.ndarray
        Bounds (``upper`` defaults to +∞).
    ftol_abs, xtol_abs : float
        Absolute stopping tolerances; tighter than lme4's ``1e-8`` so that
        estimates agree with lme4's to more digits than lme4's own tolerance.
    max_evaluations : int
        Evaluation limit.
    gradient_tolerance : float
        A :class:`ConvergenceWarning` is raised when, for some interior
        parameter, both the gradient and the gradient scaled by the
        curvature (:func:`scaled_gradient`) exceed this — lme4's check and
        tolerance (2e-3).
    polish : bool
        Finish with Newton steps on finite-difference derivatives
        (:func:`newton_polish`) for a smooth objective: BOBYQA stops where the
        objective stops changing, which on a flat optimum leaves the
        parameters uncertain in their fifth digit.
    value_and_gradient : callable, optional
        ``x → (objective, gradient)``. When given, and ``optimizer`` is
        ``"quasi-newton"``, a bound-constrained quasi-Newton method
        minimises (Newton steps on a differenced Hessian, updated by BFGS);
        BOBYQA takes over (recorded as the fit log's ``fallback``) from its
        end when the gradient there fails lme4's check or cannot be
        evaluated, and from the start when it ended on the boundary (a
        diagonal entry of a factor near zero).
    optimizer : {"quasi-newton", "bobyqa"}
        ``"bobyqa"`` always uses BOBYQA (lme4's path).
    known_curvature : callable, optional
        ``x → (index, block)``: the quasi-Newton start's Hessian on the
        coordinates ``index``, known without differencing; only the other
        columns are differenced.
    boundary_restart : numpy.ndarray, optional
        Where BOBYQA starts when the quasi-Newton run ends on the boundary
        (default ``start``): lme4's start, when ``start`` is a guess that may
        lie on the wrong side of the fold.
    resolution : float, optional
        The quasi-Newton run stops when the decrease a step predicts is below
        this times the criterion (default 1e-17, below its last digit): a
        criterion computed by an inner iteration, such as the Laplace
        deviance by PIRLS, resolves less.

    Returns
    -------
    OptSummary
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}; got {optimizer!r}"
        )
    # Each evaluation makes many small BLAS calls; threads cost more than they save there.
    with blas_on_one_thread():
        if value_and_gradient is not None and optimizer == "quasi-newton":
            return _minimize_quasi_newton(
                func,
                value_and_gradient,
                start,
                lower,
                upper,
                ftol_abs,
                xtol_abs,
                max_evaluations,
                gradient_tolerance,
                known_curvature,
                boundary_restart,
                _RESOLUTION if resolution is None else resolution,
            )
        return _minimize(
            func,
            start,
            lower,
            upper,
            ftol_abs,
            xtol_abs,
            max_evaluations,
            gradient_tolerance,
            polish,
        )


def _minimize(
    func: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None,
    ftol_abs: float,
    xtol_abs: float,
    max_evaluations: int,
    gradient_tolerance: float,
    polish: bool,
) -> OptSummary:
    start = np.asarray(start, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(start, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x0 = np.clip(start, lower, upper)
    count = 0
    best: list = [math.inf, x0.copy()]

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        nonlocal count
        count += 1
        value = func(x)
        if value < best[0]:
            best[0], best[1] = value, np.array(x, dtype=float)
        # NLopt cannot use inf; a large finite value steers BOBYQA away instead.
        return value if math.isfinite(value) else 1e300

    began = time.perf_counter()
    f_start = func(x0)
    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(max_evaluations)
    # BOBYQA's first trust-region radius; 0.2 suits θ on a relative-SD scale.
    opt.set_initial_step(0.2)
    issues: list[str] = []
    try:
        x_best = opt.optimize(x0)
        code = opt.last_optimize_result()
        message = _NLOPT_MESSAGES.get(code, str(code))
    except nlopt.RoundoffLimited:
        # the objective cannot be resolved any further: a stop on the attainable
        # precision, judged by the gradient check below like any other stop
        x_best = best[1]
        code = nlopt.SUCCESS
        message = "objective resolved to round-off"
    x_best = np.asarray(x_best, dtype=float)
    f_best = func(x_best)
    x_best, f_best = _onto_bounds(func, x_best, f_best, lower)
    count += 1
    if polish:
        x_best, f_best, grad, steps = newton_polish(func, x_best, f_best, lower, upper)
        count += steps
    elif np.isfinite(gradient_tolerance):
        grad = finite_difference_gradient(func, x_best, lower, upper)
    else:
        grad = np.zeros_like(x_best)
    converged = code in (nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.XTOL_REACHED)
    pinned = _pinned(x_best, grad, lower, upper)
    interior_grad = np.where(pinned, 0.0, grad)
    if not converged:
        issues.append(f"optimizer stopped: {message}")
    if interior_grad.size and np.max(np.abs(interior_grad)) > gradient_tolerance:
        scaled = scaled_gradient(func, x_best, interior_grad, ~pinned)
        if scaled is None:
            issues.append(
                "the Hessian at the optimum is not positive definite (largest gradient "
                f"{np.max(np.abs(interior_grad)):.2g}): the optimiser may have stopped at a "
                "saddle point, or the model is nearly unidentifiable — check for redundant "
                "terms or try other start values (start=)"
            )
        elif np.max(np.minimum(np.abs(scaled), np.abs(interior_grad))) > gradient_tolerance:
            issues.append(
                "the fit may not have converged: the gradient at the optimum, scaled by the "
                f"curvature, is {np.max(np.abs(scaled)):.2g} (tolerance "
                f"{gradient_tolerance:g}); try other start values (start=)"
            )
    for msg in issues:
        warnings.warn(msg, ConvergenceWarning, stacklevel=4)
    return OptSummary(
        optimizer="BOBYQA (NLopt)",
        initial=x0,
        final=x_best,
        lower=lower,
        upper=upper,
        initial_objective=f_start,
        final_objective=f_best,
        evaluations=count,
        converged=converged,
        message=message,
        elapsed=time.perf_counter() - began,
        gradient=interior_grad,
        warnings=tuple(issues),
    )


def _minimize_quasi_newton(
    func: Callable[[np.ndarray], float],
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None,
    ftol_abs: float,
    xtol_abs: float,
    max_evaluations: int,
    gradient_tolerance: float,
    known_curvature: KnownCurvature | None = None,
    boundary_restart: np.ndarray | None = None,
    resolution: float = 1e-17,
) -> OptSummary:
    start = np.asarray(start, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(start, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x0 = np.clip(start, lower, upper)
    count = 0
    best: list = [math.inf, x0.copy(), np.full(x0.size, np.nan)]

    exact = resolution <= _RESOLUTION

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal count
        count += 1
        value, grad = value_and_gradient(x)
        if exact:
            # within the criterion's round-off, the smaller gradient marks the optimum
            tie = _TIE * (abs(value) + 1.0)
            better = value < best[0] - tie or (
                value <= best[0] + tie
                and np.max(np.abs(grad), initial=0.0) < np.max(np.abs(best[2]), initial=0.0)
            )
        else:
            better = value < best[0]
        if better:
            best[0], best[1], best[2] = value, np.array(x, dtype=float), np.array(grad)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            # a point the criterion cannot be evaluated at: the line search backs off
            return 1e300, np.zeros_like(x)
        return value, grad

    began = time.perf_counter()
    f_start, g_start = objective(x0)
    message = _bounded_newton(
        func,
        objective,
        x0,
        f_start,
        g_start,
        lower,
        upper,
        max_evaluations,
        known=None if known_curvature is None else known_curvature(x0),
        resolution=resolution,
        check_tolerance=gradient_tolerance,
    )
    f_best, x_best, grad = best
    pinned = _pinned(x_best, grad, lower, upper)
    interior_grad = np.where(pinned, 0.0, grad)
    reason = ""
    restart: np.ndarray | None = None
    if not (math.isfinite(f_best) and np.all(np.isfinite(grad))):
        reason = "the criterion or its gradient could not be evaluated at the quasi-Newton end"
    elif interior_grad.size and np.max(np.abs(interior_grad)) > gradient_tolerance:
        # lme4's check, as the BOBYQA path judges its end: a raw gradient that
        # grows with the number of observations is small on the curvature's scale
        scaled = _scaled_by_gradient_differences(
            value_and_gradient, x_best, grad, lower, upper, ~pinned
        )
        count += int(np.count_nonzero(~pinned))
        worst = (
            math.inf
            if scaled is None
            else float(np.max(np.minimum(np.abs(scaled), np.abs(interior_grad[~pinned]))))
        )
        if worst > gradient_tolerance:
            reason = (
                f"the quasi-Newton run stopped with gradient "
                f"{np.max(np.abs(interior_grad)):.2g} ({message})"
            )
    if not reason and np.any((lower == 0.0) & (x_best <= _NEAR_BOUND)):
        # On the boundary the parameterisation folds: a zero diagonal entry of a
        # factor makes the signs of the entries below it arbitrary, and the
        # quasi-Newton run may end in the copy from which the criterion rises
        # while the other copy descends. BOBYQA from the start, lme4's path, settles it.
        reason = "the quasi-Newton run ended on the boundary, which BOBYQA from the start checks"
        restart = x0 if boundary_restart is None else np.clip(boundary_restart, lower, upper)
    if reason:
        fallback = _minimize(
            func,
            restart if restart is not None else x_best,
            lower,
            upper,
            ftol_abs,
            xtol_abs,
            max_evaluations,
            gradient_tolerance,
            True,
        )
        return replace(
            fallback,
            optimizer=f"{_QUASI_NEWTON}, then BOBYQA (NLopt)",
            initial=x0,
            initial_objective=f_start,
            evaluations=count + fallback.evaluations,
            elapsed=time.perf_counter() - began,
            fallback=reason,
        )
    return OptSummary(
        optimizer=_QUASI_NEWTON,
        initial=x0,
        final=x_best,
        lower=lower,
        upper=upper,
        initial_objective=f_start,
        final_objective=f_best,
        evaluations=count,
        converged=True,
        message=message,
        elapsed=time.perf_counter() - began,
        gradient=interior_grad,
    )


_QUASI_NEWTON = "bounded quasi-Newton (analytic gradient)"


def _bounded_newton(
    func: Callable[[np.ndarray], float],
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    value: float,
    grad: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_evaluations: int,
    gradient_tolerance: float = 1e-9,
    known: tuple[np.ndarray, np.ndarray] | None = None,
    resolution: float = 1e-17,
    check_tolerance: float = np.inf,
) -> str:
    """Projected quasi-Newton steps from a differenced Hessian, updated by BFGS.

    The Hessian is started from forward differences of the analytic
    gradient (``k`` gradient evaluations, fewer for the coordinates whose
    block is ``known``: ``(index, block)``), so the first steps are Newton
    steps on the right scale: for the few variance parameters of a mixed
    model this reaches the optimum in a handful of steps, where a
    limited-memory method started from a unit Hessian needs tens of
    evaluations. Parameters on a bound whose gradient points outwards are
    held there; a step is cut back until the objective falls by Armijo's
    rule, and no further once the decrease it predicts is below the
    criterion's round-off. The run stops when the predicted decrease is
    below ``resolution`` (relative) and the gradient within
    ``check_tolerance`` (the caller's final check), or the decrease is below
    round-off. Progress is reported through
    ``value_and_gradient`` (the caller records the best point); ``value``
    and ``grad`` are its values at the start ``x``. The return value is the
    stopping reason.
    """
    evaluations = 1
    if not (math.isfinite(value) and np.all(np.isfinite(grad))):
        return "the criterion cannot be evaluated at the start"
    hess = hessian_from_gradient(value_and_gradient, x, grad, lower, upper, known=known)
    evaluations += x.size - (0 if known is None else known[0].size)
    # a step is never longer than this (in θ, a relative-SD scale): far from the
    # optimum the local quadratic model says little about where the minimum is
    radius = 1.0
    while evaluations < max_evaluations:
        held = ((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0))
        free = np.flatnonzero(~held)
        if free.size == 0 or np.max(np.abs(grad[free])) <= gradient_tolerance:
            return "projected gradient below tolerance"
        step = np.zeros_like(x)
        step[free] = -_positive_definite_solve(hess[np.ix_(free, free)], grad[free])
        slope = float(grad @ step)
        if slope >= 0.0:
            step[free] = -grad[free]
            slope = float(grad @ step)
        roundoff = resolution * (abs(value) + 1.0)
        if -slope <= roundoff and (
            np.max(np.abs(grad[free])) <= check_tolerance
            or -slope <= _RESOLUTION * (abs(value) + 1.0)
        ):
            # the predicted decrease (the Newton decrement) is below the criterion's
            # resolution, and the gradient passes the final check (or the decrease is
            # below round-off, where no evaluation can confirm a step)
            if resolution <= _RESOLUTION:
                _gradient_steps(value_and_gradient, x, grad, hess, free, lower, upper)
            return "predicted decrease below round-off"
        longest = float(np.max(np.abs(step)))
        if longest > radius:
            step *= radius / longest
        # the full step usually succeeds, so it is evaluated with its gradient;
        # shorter ones first without
        trial = np.clip(x + step, lower, upper)
        trial_value, trial_grad = value_and_gradient(trial)
        evaluations += 1
        length = 1.0
        if not trial_value <= value + 1e-4 * float(grad @ (trial - x)):
            accepted = False
            for _ in range(30):
                if -length * slope <= roundoff:
                    # a shorter step could lower the criterion by round-off alone
                    break
                length *= 0.5
                trial = np.clip(x + length * step, lower, upper)
                trial_value = func(trial)
                evaluations += 1
                if trial_value <= value + 1e-4 * float(grad @ (trial - x)):
                    accepted = True
                    break
            if not accepted:
                return "no step lowers the criterion (round-off reached)"
            trial_value, trial_grad = value_and_gradient(trial)
            evaluations += 1
        # the trust in the quadratic model grows only where it predicted the decrease well
        predicted = -(float(grad @ (trial - x)) + 0.5 * float((trial - x) @ hess @ (trial - x)))
        agreement = (value - trial_value) / predicted if predicted > 0.0 else 0.0
        if length < 1.0:
            radius = max(length * radius, 1e-3)
        elif agreement > 0.75:
            radius = min(2.0 * radius, 1e3)
        elif agreement < 0.25:
            radius = max(0.5 * radius, 1e-3)
        if not np.all(np.isfinite(trial_grad)):
            return "the gradient cannot be evaluated"
        s, y = trial - x, trial_grad - grad
        sy = float(s @ y)
        if sy > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y)):
            hs = hess @ s
            hess = hess - np.outer(hs, hs) / float(s @ hs) + np.outer(y, y) / sy
        change = value - trial_value
        x, value, grad = trial, trial_value, trial_grad
        if change <= 1e-15 * (abs(value) + 1.0) and np.max(np.abs(s)) <= 1e-10 * (
            1.0 + float(np.max(np.abs(x)))
        ):
            return "the criterion and the parameters stopped changing"
    return "maximum number of evaluations reached"


#: A change of the criterion below this (relative) is below a tenth of its last
#: digit (double precision resolves 1.1e-16): no evaluation can show it.
_RESOLUTION = 1e-17

#: Criterion values this close (relative) are equal to its round-off: between such
#: points an exact criterion's optimum is the one with the smaller gradient.
_TIE = 1e-13

#: Newton steps judged by the gradient at the end of an exact criterion's run.
_GRADIENT_STEPS = 3


def _gradient_steps(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    grad: np.ndarray,
    hess: np.ndarray,
    free: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> None:
    """Newton steps on the analytic gradient once the criterion is flat to round-off.

    Where the decrease a step predicts is below the criterion's last digit,
    the criterion cannot say which point is lower, but the analytic gradient
    still resolves the optimum to its own round-off: each step is kept (by
    the caller's record of the best point, which prefers the smaller
    gradient among values equal to round-off) while it shrinks the gradient.
    Without these steps ``θ̂`` is resolved to about ``√ε`` relative only.
    """
    size = float(np.max(np.abs(grad[free]), initial=0.0))
    for _ in range(_GRADIENT_STEPS):
        if size == 0.0:
            return
        step = np.zeros_like(x)
        step[free] = -_positive_definite_solve(hess[np.ix_(free, free)], grad[free])
        trial = np.clip(x + step, lower, upper)
        trial_value, trial_grad = value_and_gradient(trial)
        trial_size = float(np.max(np.abs(trial_grad[free]), initial=0.0))
        if not (math.isfinite(trial_value) and np.all(np.isfinite(trial_grad))):
            return
        if not trial_size < 0.5 * size:
            return
        x, grad, size = trial, trial_grad, trial_size


def _scaled_by_gradient_differences(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    grad: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    free: np.ndarray,
) -> np.ndarray | None:
    """:func:`scaled_gradient` of the free parameters from differences of the analytic gradient.

    One gradient evaluation per free parameter instead of the ``2k² + 1``
    evaluations of the criterion a differenced Hessian takes. ``None`` when
    a gradient cannot be evaluated or the Hessian is not positive definite.
    """
    index = np.flatnonzero(free)
    hess = np.empty((index.size, index.size))
    for col, i in enumerate(index):
        h = 1e-5 * max(1.0, abs(x[i]))
        if x[i] + h > upper[i]:
            h = -h
        point = x.copy()
        point[i] += h
        _, shifted = value_and_gradient(point)
        hess[:, col] = (shifted[index] - grad[index]) / h
    return _scaled_by(0.5 * (hess + hess.T), grad[index])


def _positive_definite_solve(hess: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``H⁻¹ g``, with ``H``'s eigenvalues floored when it is not positive definite."""
    try:
        chol = np.linalg.cholesky(hess)
        return np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(hess)
        floor = 1e-8 * max(1.0, float(np.max(np.abs(values))))
        values = np.maximum(np.abs(values), floor)
        return vectors @ ((vectors.T @ rhs) / values)


#: A diagonal entry of θ this close to zero counts as on the boundary (the
#: standardised scale; lme4 calls a fit singular below 1e-4).
_NEAR_BOUND = 1e-4


def checked_theta(theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``θ`` as a float array, after checking its length and its bounds."""
    x = np.asarray(theta, dtype=float)
    if x.shape != lower.shape:
        raise ValueError(f"theta must have {lower.size} entries, got shape {x.shape}")
    if np.any(x < lower):
        raise ValueError("theta has negative entries on the diagonal of a relative factor")
    return x


def evaluated_at(
    func: Callable[[np.ndarray], float], x: np.ndarray, lower: np.ndarray
) -> OptSummary:
    """A fit log for a point given by the user rather than found by optimisation."""
    x = checked_theta(x, lower)
    value = func(x)
    return OptSummary(
        optimizer="none (theta given)",
        initial=x,
        final=x,
        lower=lower,
        upper=np.full_like(x, np.inf),
        initial_objective=value,
        final_objective=value,
        evaluations=1,
        converged=True,
        message="evaluated at the given theta",
        elapsed=0.0,
        gradient=np.zeros_like(x),
    )


__getattr__ = moved_names(
    __name__, {"single_threaded_blas": ("hiermodels.mle.blas", "single_threaded_blas")}
)
