"""Parse lme4-style model formulas into an immutable :class:`FormulaSpec`.

No data is touched here: the spec records what the formula says, and
:mod:`hiermodels.design.design` turns it into matrices for a data frame.
"""

from __future__ import annotations

import functools
import keyword
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hiermodels.design._syntax import (
    bare_groups,
    depths,
    is_name,
    is_wrapped,
    matching_close,
    rewrite_power_in_I,
    split_signed,
    split_top,
    strip_backticks,
    top_positions,
    unwrap,
)
from hiermodels.errors import FormulaError, SyntaxProblem

if TYPE_CHECKING:
    from formulaic import Formula
    from formulaic.parser.types import Factor

__all__ = ["FormulaSpec", "RandomTerm", "ResponseSpec", "FormulaError", "parse_formula"]


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


_EXAMPLE = "write it as 'response ~ terms', e.g. 'y ~ x + (1 | g)'"


def parse_formula(formula: str) -> FormulaSpec:
    """Parse an lme4-style formula.

    Parameters
    ----------
    formula : str
        ``"response ~ fixed + (effects | group) + ..."``. The response is an
        expression (``Reaction``, ``log(y)``) or ``cbind(successes, failures)``.
        Random-effect terms are parenthesised: ``(1 | g)``, ``(x | g)``
        (intercept implied), ``(0 + x | g)``, ``(x || g)`` (uncorrelated),
        ``(1 | a/b)`` (nested), ``(1 | a:b)`` (interaction). The fixed part
        is any formulaic right-hand side (``a * b``, ``I(x^2)``, ``C(g)``,
        ``scale(x)``, ``0 +`` / ``- 1``).

    Returns
    -------
    FormulaSpec
        Random terms fully expanded (one :class:`RandomTerm` per block, in
        formula order; ``(e | a/b)`` gives ``a`` then ``a:b``); the fixed
        part with an explicit ``"1"`` or ``"0"`` first.

    Raises
    ------
    FormulaError
        When the formula cannot be read; the message names the offending
        piece and what was expected.

    Examples
    --------
    >>> spec = parse_formula("Reaction ~ Days + (Days | Subject)")
    >>> spec.fixed, spec.random[0].expr, spec.random[0].factors
    ('1 + Days', '1 + Days', ('Subject',))
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string, got {type(formula).__name__}")
    return _parse(formula)


@functools.lru_cache(maxsize=256)
def _parse(formula: str) -> FormulaSpec:
    """:func:`parse_formula` of a string, memoised.

    A spec is immutable and depends on the text alone; a refused formula
    raises again on every call (exceptions are not cached).
    """
    text = formula.strip()
    if not text:
        raise FormulaError(f"the formula is empty; {_EXAMPLE}")
    _check_brackets(text)
    tildes = top_positions(text, "~")
    if not tildes:
        raise FormulaError(f"formula {text!r} has no '~'; {_EXAMPLE}")
    if len(tildes) > 1:
        raise FormulaError(
            f"formula {text!r} has {len(tildes)} '~'; a formula has exactly one, "
            "between the response and the terms"
        )
    lhs, rhs = text[: tildes[0]].strip(), text[tildes[0] + 1 :].strip()
    if not lhs:
        raise FormulaError(
            f"formula {text!r} has no response before '~'; {_EXAMPLE} "
            "(one-sided formulas are not supported)"
        )
    if not rhs:
        raise FormulaError(
            f"formula {text!r} has nothing after '~'; write the terms, e.g. 'y ~ 1 + (1 | g)'"
        )
    response = _parse_response(lhs)
    fixed, random = _parse_rhs(rhs)
    return FormulaSpec(formula=formula, response=response, fixed=fixed, random=tuple(random))


def _check_brackets(text: str) -> None:
    """Raise a :class:`FormulaError` pointing at the first unbalanced bracket or quote."""
    try:
        depths(text)
    except SyntaxProblem as problem:
        kind = "unclosed quote" if str(problem).startswith("quote") else "unbalanced parentheses"
        pointer = " " * problem.position + "^"
        raise FormulaError(
            f"{kind} in formula: {problem} (character {problem.position + 1})\n"
            f"    {text}\n    {pointer}"
        ) from None


def _parse_response(lhs: str) -> ResponseSpec:
    """Read the left-hand side: an expression or ``cbind(successes, failures)``."""
    if top_positions(lhs, "|"):
        raise FormulaError(
            f"the response {lhs!r} contains '|'; random-effect terms belong after '~'"
        )
    match = re.match(r"cbind\s*\(", lhs)
    if match is None or matching_close(lhs, match.end() - 1) != len(lhs) - 1:
        return ResponseSpec(expr=lhs)
    inner = lhs[match.end() : -1]
    args = split_top(inner, ",") if inner.strip() else []
    if len(args) != 2 or not all(args):
        raise FormulaError(
            f"cbind() needs exactly two arguments, cbind(successes, failures); "
            f"{lhs!r} has {len([a for a in args if a])}"
        )
    return ResponseSpec(expr=lhs, successes=args[0], failures=args[1])


def _parse_rhs(rhs: str) -> tuple[str, list[RandomTerm]]:
    """Split the right-hand side into the fixed part and the expanded random terms."""
    intercept = True
    fixed_items: list[tuple[str, str]] = []
    random: list[RandomTerm] = []
    for sign, piece in split_signed(rhs):
        if not piece:
            raise FormulaError(f"empty term in {rhs!r}: check for a doubled or trailing '+' or '-'")
        if is_wrapped(piece) and _bar_positions(unwrap(piece)):
            if sign == "-":
                raise FormulaError(
                    f"random-effect term {piece!r} cannot be removed with '-'; leave it out"
                )
            random.extend(_parse_bar(piece, unwrap(piece)))
            continue
        _check_fixed_piece(piece)
        if piece in ("0", "1"):
            intercept = _apply_intercept(intercept, sign, piece)
            continue
        fixed_items.append((sign, rewrite_power_in_I(piece)))
    fixed = _join(intercept, fixed_items)
    _check_formulaic(fixed, f"the fixed-effects part {fixed!r}")
    return fixed, random


def _check_fixed_piece(piece: str) -> None:
    """Reject bars outside parentheses, bar terms inside other terms and ``offset()``."""
    if _bar_positions(piece):
        raise FormulaError(
            f"{piece!r} looks like a random-effect term; wrap random-effect terms in "
            f"parentheses: ({piece})"
        )
    for start, end in bare_groups(piece):
        if _bar_positions(piece[start + 1 : end]):
            raise FormulaError(
                f"random-effect term {piece[start : end + 1]!r} must stand on its own, "
                f"added with '+'; found inside {piece!r}"
            )
    if re.match(r"offset\s*\(", piece):
        raise FormulaError(
            f"{piece!r}: offsets are not read from the formula; pass offset=... to "
            "build_design instead"
        )


def _bar_positions(text: str) -> list[int]:
    """Top-level positions of ``|`` (each ``||`` counts as one bar at its first character)."""
    singles = top_positions(text, "|")
    bars: list[int] = []
    for pos in singles:
        if bars and bars[-1] == pos - 1 and text[pos - 1] == "|":
            continue
        bars.append(pos)
    return bars


def _apply_intercept(current: bool, sign: str, piece: str) -> bool:
    """Update the intercept flag for a ``+1``, ``+0``, ``-1`` or ``-0`` piece."""
    return (sign == "+") == (piece == "1") if piece in ("0", "1") else current


def _join(intercept: bool, items: list[tuple[str, str]]) -> str:
    """``"1"``/``"0"`` followed by the signed pieces: ``"1 + x - x:z"``."""
    return ("1" if intercept else "0") + "".join(f" {sign} {piece}" for sign, piece in items)


def _parse_bar(piece: str, inner: str) -> list[RandomTerm]:
    """Expand one ``(effects | group)`` or ``(effects || group)`` term."""
    bars = _bar_positions(inner)
    if len(bars) > 1:
        raise FormulaError(
            f"random-effect term {piece!r} has more than one bar; write one '|' (or '||') "
            "per term: (effects | group)"
        )
    at = bars[0]
    double = inner.startswith("||", at)
    bar = "||" if double else "|"
    lhs, group = inner[:at].strip(), inner[at + len(bar) :].strip()
    if not lhs:
        raise FormulaError(
            f"random-effect term {piece!r} has nothing before '{bar}'; write the effects "
            f"that vary by group, e.g. (1 {bar} {group or 'g'})"
        )
    if not group:
        raise FormulaError(
            f"random-effect term {piece!r} has nothing after '{bar}'; name the grouping "
            f"factor, e.g. ({lhs} {bar} g)"
        )
    factor_sets = _parse_grouping(group, piece)
    exprs = _random_exprs(lhs, piece, double)
    return [RandomTerm(expr=expr, factors=factors) for expr in exprs for factors in factor_sets]


def _parse_grouping(group: str, piece: str) -> list[tuple[str, ...]]:
    """``"a/b"`` gives ``[("a",), ("a", "b")]``; ``"a:b"`` gives ``[("a", "b")]``."""
    invalid = FormulaError(
        f"grouping expression {group!r} in {piece!r} is not valid: use column names, "
        "joined by ':' for an interaction (a:b) or '/' for nesting (a/b)"
    )
    out: list[tuple[str, ...]] = []
    columns: list[str] = []
    for part in split_top(unwrap(group), "/"):
        names = split_top(unwrap(part), ":")
        if not all(is_name(name) for name in names):
            raise invalid
        for name in names:
            column = strip_backticks(name)
            if column in columns:
                raise FormulaError(
                    f"grouping expression {group!r} in {piece!r} names column {column!r} twice"
                )
            columns.append(column)
        out.append(tuple(columns))
    return out


def _random_exprs(lhs: str, piece: str, double: bool) -> list[str]:
    """The term expression(s) left of the bar, intercept explicit; split for ``||``."""
    intercept = True
    items: list[tuple[str, str]] = []
    for sign, item in split_signed(lhs):
        if not item:
            raise FormulaError(
                f"empty effect in random-effect term {piece!r}: check for a doubled or "
                "trailing '+' or '-'"
            )
        if item in ("0", "1"):
            intercept = _apply_intercept(intercept, sign, item)
        else:
            items.append((sign, rewrite_power_in_I(item)))
    if double and all(sign == "+" and not _is_compound(item) for sign, item in items):
        exprs = (["1"] if intercept else []) + [f"0 + {item}" for _, item in items]
    elif double:
        exprs = _expand_with_formulaic(_join(intercept, items), piece)
    else:
        exprs = [_join(intercept, items)] if intercept or any(s == "+" for s, _ in items) else []
    if not exprs:
        raise FormulaError(
            f"random-effect term {piece!r} has no effects once the intercept is removed; "
            "write e.g. (1 | g) or (0 + x | g)"
        )
    for expr in exprs:
        _check_formulaic(expr, f"the effects {expr!r} of random-effect term {piece!r}")
    return exprs


def _is_compound(item: str) -> bool:
    """Whether a term uses formula operators that expand into several terms."""
    level = depths(item)
    if is_wrapped(item):
        return True
    return any(level[i] == 0 and ch in "*/^%" for i, ch in enumerate(item))


def _expand_with_formulaic(expr: str, piece: str) -> list[str]:
    """Expand ``(a*b || g)`` like R's ``terms()``: one expression per term, by degree."""
    formula = _check_formulaic(expr, f"the effects of random-effect term {piece!r}")
    exprs: list[str] = []
    for term in formula:
        text = ":".join(_factor_text(factor) for factor in term.factors)
        exprs.append("1" if text == "1" else f"0 + {text}")
    return exprs


def _factor_text(factor: Factor) -> str:
    """A formulaic factor written back as formula text that reads the same."""
    expr = str(factor.expr)
    method = str(factor.eval_method.value)
    if method == "lookup":
        return expr if re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", expr) else f"`{expr}`"
    call = re.match(r"[A-Za-z_.][A-Za-z0-9_.]*\s*\(", expr)
    if method == "python" and not (call and matching_close(expr, call.end() - 1) == len(expr) - 1):
        return "{" + expr + "}"
    return expr


def _check_formulaic(expr: str, what: str) -> Formula:
    """Parse ``expr`` with formulaic, turning its complaints into a :class:`FormulaError`."""
    from formulaic import Formula

    try:
        return Formula(expr)
    except Exception as exc:  # formulaic raises several exception types for bad syntax
        detail = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # drop formulaic's terminal colours
        # formulaic reads a quoted keyword alone as a column, but not inside a call
        keywords = [n for n in re.findall(r"`([^`]+)`", expr) if keyword.iskeyword(n)]
        if keywords:
            name = keywords[0]
            detail += (
                f"; the column {name!r} is a Python keyword, which works in backticks "
                f"on its own (`{name}`) but not inside a transform such as I() or log(): "
                f"rename the column (e.g. to {name + '_'!r})"
            )
        raise FormulaError(f"{what} is not a valid formula: {detail}") from None
