"""Parse lme4-style model formulas into an immutable :class:`FormulaSpec`.

No data is touched here: the spec records what the formula says, and
:mod:`hiermodels.spec.design` turns it into matrices for a data frame.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FormulaSpec", "RandomTerm", "ResponseSpec", "FormulaError", "parse_formula"]


class FormulaError(ValueError):
    """A formula that cannot be parsed; the message names the offending piece."""


@dataclass(frozen=True)
class ResponseSpec:
    """The left-hand side of a formula.

    Attributes
    ----------
    expr : str
        The response expression as written (``"Reaction"``,
        ``"cbind(incidence, size - incidence)"``, ``"log(y)"``).
    successes, failures : str or None
        For lme4's binomial form ``cbind(successes, failures)``, the two
        expressions; ``None`` otherwise.
    """

    expr: str
    successes: str | None = None
    failures: str | None = None

    @property
    def is_cbind(self) -> bool:
        """Whether the response is ``cbind(successes, failures)``."""
        return self.successes is not None


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(expr | group)`` after expansion.

    ``(x || g)`` is expanded into one uncorrelated term per column group,
    ``(1 | a/b)`` into ``(1 | a)`` and ``(1 | a:b)``, so every
    :class:`RandomTerm` is a single block with a full covariance matrix.

    Attributes
    ----------
    expr : str
        The left-hand side of the bar as a formula right-hand side, with
        the intercept explicit: ``"1"``, ``"1 + Days"``, ``"0 + Days"``.
    factors : tuple of str
        The data columns whose interaction forms the grouping factor:
        ``("Subject",)`` or ``("schoolid", "classid")``.
    """

    expr: str
    factors: tuple[str, ...]

    @property
    def group(self) -> str:
        """Name of the grouping factor, the factors joined by ``":"``."""
        return ":".join(self.factors)


@dataclass(frozen=True)
class FormulaSpec:
    """An lme4-style formula, parsed.

    Attributes
    ----------
    formula : str
        The formula as the user wrote it.
    response : ResponseSpec
        The left-hand side.
    fixed : str
        The fixed-effects right-hand side as a formula formulaic reads
        (``"1 + Days"``; ``"0 + x"`` without intercept); ``^`` inside
        ``I()`` is already rewritten to ``**``.
    random : tuple of RandomTerm
        The random-effect terms, expanded, in formula order.
    """

    formula: str
    response: ResponseSpec
    fixed: str
    random: tuple[RandomTerm, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct grouping-factor names, in order of first appearance."""
        return tuple(dict.fromkeys(term.group for term in self.random))
