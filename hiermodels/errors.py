"""Every error and warning class hiermodels raises, in one place.

Errors are ``ValueError`` subclasses, so code that catches ``ValueError``
keeps working, except :class:`CliError`, the command line's own refusal of
its input; warnings are ``UserWarning`` subclasses with a message that
names the problem and what to do about it. The command line prints each of
them as one ``error: …`` or ``warning: …`` line.
"""

from __future__ import annotations

__all__ = [
    "BoundaryWarning",
    "CliError",
    "ConvergenceWarning",
    "DegenerateDataWarning",
    "DesignError",
    "FitError",
    "FormulaError",
    "NumericalWarning",
    "SamplingWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "ColumnProblem",
    "SyntaxProblem",
]


class FormulaError(ValueError):
    """A formula that cannot be parsed; the message names the offending piece."""


class DesignError(ValueError):
    """The data do not fit the formula; the message names column, rows or level."""


class CliError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without clear evidence of a minimum."""


class SingularFitWarning(UserWarning):
    """The fit is on the boundary of the parameter space (``isSingular``)."""


class BoundaryWarning(UserWarning):
    """A hyperparameter MLE is on the boundary: EB collapses to complete pooling there."""


class SeparationWarning(UserWarning):
    """A binary or count response is perfectly predicted by a covariate or a group.

    The likelihood then has no finite maximum in that direction: an estimate
    runs off towards infinity (or a variance to a large value) and its
    standard error means nothing.
    """


class DegenerateDataWarning(UserWarning):
    """The data carry no information about part of the model (e.g. a group with all-zero counts)."""


class SamplingWarning(UserWarning):
    """MCMC diagnostics (divergences, r_hat, effective sample size) flag the draws."""


class FitError(ValueError):
    """The likelihood cannot be evaluated at the estimates; the message says what to try."""


class NumericalWarning(UserWarning):
    """A derived quantity could not be computed; it is reported as NaN, not as a guess."""


# -- raised inside the design stage and re-raised there as one of the errors above ----------


class ColumnProblem(ValueError):
    """A column-level problem; :func:`~hiermodels.design.build_design` re-raises it as
    :class:`DesignError` with the formula's context."""


class SyntaxProblem(ValueError):
    """A bracket or quote problem, with the 0-based position where it was found;
    :func:`~hiermodels.design.parse_formula` re-raises it as :class:`FormulaError`."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position
