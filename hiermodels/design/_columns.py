"""Which data columns a formula needs, and what to do with their missing values.

Variable names come from formulaic's parse of each right-hand side (a
*lookup* factor is a column; a *python* factor such as ``log(x)`` or
``scale(x)`` is read with :mod:`ast`), so transforms and numpy functions are
not mistaken for columns.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import functools
import keyword
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiermodels.design._syntax import to_python_power
from hiermodels.design.formula import FormulaSpec
from hiermodels.errors import ColumnProblem

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[^\W\d]\w*")
#: Keywords that are operators in an expression, not misplaced column names.
_OPERATORS = frozenset(
    {"and", "or", "not", "in", "is", "if", "else", "for", "None", "True", "False"}
)


class ColumnReader:
    """The columns of one data frame, each read once.

    ``frame[name]`` makes a new Series on every call (20-30 us in pandas),
    and building a design reads most columns several times: for missing
    values, unused categories, covariate checks, the response, every term
    and every grouping factor. A reader lives for one build, so a frame
    changed afterwards is read afresh by the next.

    Parameters
    ----------
    frame : pandas.DataFrame
        The frame; only read.
    """

    __slots__ = ("_read", "frame")

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._read: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        """``frame[name]`` (a Series, or a DataFrame for a duplicated name)."""
        try:
            return self._read[name]
        except KeyError:
            values = self._read[name] = self.frame[name]
            return values


def reader_of(data: pd.DataFrame, read: ColumnReader | None) -> ColumnReader:
    """``read`` when it reads ``data``, otherwise a new reader of ``data``."""
    return read if read is not None and read.frame is data else ColumnReader(data)


def python_names(expr: str) -> tuple[list[str], set[str]]:
    """Names used in a Python expression, and the subset called as functions.

    Backtick-quoted names (``\\`my col\\```) are returned unquoted; R's ``^``
    is read as ``**``. Names are in order of first appearance.
    """
    names, called = _python_names(expr)
    return list(names), set(called)


@functools.lru_cache(maxsize=1024)
def _python_names(expr: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """:func:`python_names`, memoised (an expression that cannot be read raises every time)."""
    code, aliases = unquote_names(to_python_power(expr))
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError as exc:
        words = [w for w in _WORD.findall(code) if keyword.iskeyword(w) and w not in _OPERATORS]
        hint = (
            f"; {words[0]!r} is a Python keyword: write the column in backticks, `{words[0]}`"
            if words
            else ""
        )
        raise ColumnProblem(f"cannot read the expression {expr!r}: {exc.msg}{hint}") from None
    names: list[str] = []
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(aliases.get(node.func.id, node.func.id))
        if isinstance(node, ast.Name):
            name = aliases.get(node.id, node.id)
            if name not in names:
                names.append(name)
    return tuple(names), frozenset(called)


def unquote_names(expr: str) -> tuple[str, dict[str, str]]:
    """Replace every backtick-quoted name by a plain identifier Python can parse.

    Keywords (`` `yield` ``, `` `class` ``), spaces and other characters are
    all allowed inside backticks.

    Returns
    -------
    code : str
        ``expr`` with the placeholders.
    aliases : dict
        Placeholder to the quoted name.
    """
    aliases: dict[str, str] = {}
    seen: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in seen:
            seen[name] = f"_hm_quoted_{len(seen)}_"
            aliases[seen[name]] = name
        return seen[name]

    return _QUOTED.sub(placeholder, expr), aliases


def formula_names(rhs: str) -> tuple[list[str], set[str]]:
    """Names used by a formulaic right-hand side, and those called as functions."""
    names, called = _formula_names(rhs)
    return list(names), set(called)


@functools.lru_cache(maxsize=1024)
def _formula_names(rhs: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """:func:`formula_names`, memoised: formulaic's parse is the slow part of a small model."""
    from formulaic import Formula

    names: list[str] = []
    called: set[str] = set()
    for term in Formula(rhs):
        for factor in term.factors:
            method = factor.eval_method.value
            if method == "lookup":
                found, calls = [str(factor.expr)], set[str]()
            elif method == "python":
                found, calls = python_names(str(factor.expr))
            else:
                continue
            names.extend(name for name in found if name not in names)
            called |= calls
    return tuple(names), frozenset(called)


def resolve_columns(
    names: Sequence[str], called: set[str], columns: pd.Index, where: str
) -> list[str]:
    """Keep the names that are data columns; reject unknown names with suggestions.

    Parameters
    ----------
    names, called : the output of :func:`python_names` / :func:`formula_names`.
    columns : the data frame's columns.
    where : what the names belong to, for messages (``"the fixed effects"``).

    Raises
    ------
    ColumnProblem
        Naming every unknown column, close matches and the available columns,
        or an unknown function.
    """
    from formulaic.transforms import TRANSFORMS

    available = [str(c) for c in columns]
    known = set(available)
    used: list[str] = []
    unknown: list[str] = []
    for name in names:
        if name in known:
            used.append(name)
        elif name in TRANSFORMS or hasattr(builtins, name):
            continue
        elif name in called:
            raise ColumnProblem(
                f"unknown function {name!r} in {where}; use a formulaic transform "
                f"({', '.join(sorted(k for k in TRANSFORMS if _IDENT.fullmatch(k)))}) "
                f"or numpy as np.{name}"
            )
        else:
            unknown.append(name)
    if unknown:
        raise ColumnProblem(_unknown_message(unknown, available, where))
    return used


def _unknown_message(unknown: list[str], available: list[str], where: str) -> str:
    """``column 'Dayz' (used in ...) is not in the data; did you mean 'Days'? ...``."""
    parts: list[str] = []
    for name in unknown:
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        parts.append(f"column {name!r} (used in {where}) is not in the data{hint}")
    shown = ", ".join(available[:30]) + (", ..." if len(available) > 30 else "")
    text = "; ".join(parts)
    return text + ("" if text.endswith("?") else ".") + f" Available columns: {shown}"


def spec_columns(spec: FormulaSpec, columns: pd.Index) -> list[str]:
    """Every data column the formula needs, in order of appearance, checked to exist."""
    response = spec.response
    parts: list[tuple[str, bool, str]] = []
    if response.is_cbind:
        parts.append((str(response.successes), True, f"the response {response.expr!r}"))
        parts.append((str(response.failures), True, f"the response {response.expr!r}"))
    else:
        parts.append((response.expr, True, f"the response {response.expr!r}"))
    parts.append((spec.fixed, False, f"the fixed effects {spec.fixed!r}"))
    for term in spec.random:
        parts.append((term.expr, False, f"the random-effect term ({term.expr} | {term.group})"))
    used: list[str] = []
    for expr, is_python, where in parts:
        names, called = python_names(expr) if is_python else formula_names(expr)
        used.extend(c for c in resolve_columns(names, called, columns, where) if c not in used)
    for term in spec.random:
        missing = [f for f in term.factors if f not in set(map(str, columns))]
        if missing:
            where = f"the grouping factor of ({term.expr} | {term.group})"
            raise ColumnProblem(_unknown_message(missing, [str(c) for c in columns], where))
        used.extend(f for f in term.factors if f not in used)
    return used


#: A text column whose entries are at least this share numbers is numeric with typos.
MOSTLY_NUMERIC = 0.9


def check_numeric_text(values: pd.Series, name: str, where: str, *, strict: bool) -> None:
    """Refuse a text column of numbers with a few stray non-numbers (``"abc"``, ``"-"``).

    Such a column would otherwise become categorical without a word (a
    covariate) or be refused only for its dtype (a response). With
    ``strict`` (responses) any mix of numbers and other text is refused;
    otherwise (covariates) only when numbers make up at least
    :data:`MOSTLY_NUMERIC` of the entries, since a column such as ``"0",
    "10", "high"`` may well be categorical.

    Raises
    ------
    ColumnProblem
        Naming the column, the stray values and their rows.
    """
    if isinstance(values.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
    ):
        return
    present = values.notna().to_numpy()
    if not present.any():
        return
    numbers = pd.to_numeric(values.where(present), errors="coerce").notna().to_numpy()
    stray = present & ~numbers
    n_numbers, n_stray = int(numbers.sum()), int(stray.sum())
    if n_numbers == 0 or n_stray == 0:
        return
    if not strict and n_numbers < MOSTLY_NUMERIC * (n_numbers + n_stray):
        return
    shown = list(dict.fromkeys(str(v) for v in values[stray]))
    listed = ", ".join(repr(v) for v in shown[:3]) + (", ..." if len(shown) > 3 else "")
    rows = first_rows(values.index, stray)
    raise ColumnProblem(
        f"column {name!r} (used in {where}) holds numbers but also "
        f"{plural(n_stray, 'non-numeric value')}: {listed} (rows: {rows}); "
        "correct them or leave the cells empty (missing)"
        + ("" if strict else ", or make the column a pandas Categorical if it is categorical")
    )


def first_rows(index: pd.Index, mask: np.ndarray, limit: int = 5) -> str:
    """The first ``limit`` index labels where ``mask`` is true, comma separated."""
    labels = [str(label) for label in index[np.asarray(mask, dtype=bool)][:limit]]
    more = ", ..." if int(np.count_nonzero(mask)) > limit else ""
    return ", ".join(labels) + more


def plural(count: int, word: str) -> str:
    """``plural(1, "row")`` gives ``"1 row"``, ``plural(3, "row")`` gives ``"3 rows"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _missing(values: pd.Series | pd.DataFrame) -> np.ndarray:
    """``values.isna()`` as a numpy array, from the column's array (no Series in between)."""
    if isinstance(values, pd.Series):
        return np.asarray(values.array.isna(), dtype=bool)
    return values.isna().to_numpy()


def missing_mask(
    data: pd.DataFrame,
    columns: Iterable[str],
    extra: dict[str, np.ndarray] | None,
    missing: str,
    read: ColumnReader | None = None,
) -> np.ndarray:
    """Rows to keep: those without missing values in ``columns`` (and ``extra`` arrays).

    ``missing="drop"`` warns with the count and the columns involved;
    ``missing="raise"`` raises a :class:`ColumnProblem` instead. ``read``
    is a :class:`ColumnReader` of ``data`` to share with later steps.
    """
    read = reader_of(data, read)
    flags = {name: _missing(read[name]) for name in columns}
    for name, values in (extra or {}).items():
        flags[name] = pd.isna(values)
    bad = np.zeros(len(data), dtype=bool)
    for values in flags.values():
        bad |= values
    n_bad = int(bad.sum())
    if n_bad == 0:
        return ~bad
    detail = ", ".join(f"{name} ({int(v.sum())})" for name, v in flags.items() if v.any())
    rows = plural(n_bad, "row")
    if missing == "raise":
        raise ColumnProblem(
            f"{rows} of {len(data)} have missing values in columns used by the model: "
            f"{detail} (first rows: {first_rows(data.index, bad)}); remove them or "
            "pass missing='drop'"
        )
    if n_bad == len(data):
        raise ColumnProblem(
            f"no rows left: all {len(data)} rows have missing values in columns used by "
            f"the model: {detail}"
        )
    warnings.warn(
        f"dropped {rows} of {len(data)} with missing values in: {detail}",
        UserWarning,
        stacklevel=3,
    )
    return ~bad
