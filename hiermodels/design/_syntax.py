"""Low-level scanning of formula text: nesting depth, top-level splits, rewrites.

These helpers know nothing about mixed models; :mod:`hiermodels.design.formula`
builds the lme4 grammar on top of them. A character is *top-level* when it
sits outside every bracket pair (``()``, ``[]``, ``{}``) and outside quotes
(``'``, ``"`` and formulaic's backticks).
"""

from __future__ import annotations

import re

from hiermodels.errors import SyntaxProblem

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_QUOTES = "'\"`"

# Unicode identifiers (``Schüler``, ``élève``) as Python reads them; R's dots allowed.
_NAME = re.compile(r"(?:[^\W\d]|\.)[\w.]*|`[^`]+`")


def depths(text: str) -> list[int | None]:
    """Bracket depth of every character; ``None`` for characters inside quotes.

    An opening bracket has the depth outside it, a closing bracket the depth
    outside it as well, so ``"(a)"`` gives ``[0, 1, 0]``.

    Raises
    ------
    SyntaxProblem
        For a closing bracket without its opening one, a bracket closed by
        the wrong kind, an opening bracket never closed or an open quote.
    """
    out: list[int | None] = []
    stack: list[tuple[str, int]] = []
    quote: tuple[str, int] | None = None
    for i, ch in enumerate(text):
        if quote is not None:
            out.append(None)
            if ch == quote[0]:
                quote = None
            continue
        if ch in _QUOTES:
            quote = (ch, i)
            out.append(None)
        elif ch in _OPEN:
            out.append(len(stack))
            stack.append((ch, i))
        elif ch in _CLOSE:
            if not stack:
                raise SyntaxProblem(f"{ch!r} has no matching {_CLOSE[ch]!r}", i)
            opener, where = stack.pop()
            if _OPEN[opener] != ch:
                raise SyntaxProblem(
                    f"{opener!r} opened at character {where + 1} is closed by {ch!r}", i
                )
            out.append(len(stack))
        else:
            out.append(len(stack))
    if quote is not None:
        raise SyntaxProblem(f"quote {quote[0]} is never closed", quote[1])
    if stack:
        opener, where = stack[-1]
        raise SyntaxProblem(f"{opener!r} is never closed", where)
    return out


def top_positions(text: str, token: str) -> list[int]:
    """Start positions of ``token`` where it occurs at top level."""
    level = depths(text)
    return [
        i
        for i in range(len(text) - len(token) + 1)
        if text.startswith(token, i) and all(level[j] == 0 for j in range(i, i + len(token)))
    ]


def matching_close(text: str, open_at: int) -> int:
    """Position of the bracket closing the one at ``open_at``."""
    level = depths(text)
    target = level[open_at]
    for j in range(open_at + 1, len(text)):
        if level[j] == target and text[j] in _CLOSE:
            return j
    raise SyntaxProblem(f"{text[open_at]!r} is never closed", open_at)  # pragma: no cover


def is_wrapped(text: str) -> bool:
    """Whether ``text`` is one parenthesised group: ``"(a + b)"`` but not ``"(a) + (b)"``."""
    text = text.strip()
    return text.startswith("(") and matching_close(text, 0) == len(text) - 1


def unwrap(text: str) -> str:
    """Remove redundant outer parentheses: ``"((a | g))"`` gives ``"a | g"``."""
    text = text.strip()
    while text and is_wrapped(text):
        text = text[1:-1].strip()
    return text


def split_signed(text: str) -> list[tuple[str, str]]:
    """Split on top-level ``+`` and ``-`` into ``(sign, piece)`` pairs.

    A leading sign applies to the first piece; pieces are stripped. An empty
    piece between two signs is kept (as ``""``) so callers can report it.
    ``"-1 + x"`` gives ``[("-", "1"), ("+", "x")]``.
    """
    level = depths(text)
    pieces: list[tuple[str, str]] = []
    sign = "+"
    start = 0
    for i, ch in enumerate(text):
        if level[i] == 0 and ch in "+-" and not _is_exponent_sign(text, i):
            piece = text[start:i].strip()
            if piece or pieces:
                pieces.append((sign, piece))
            sign, start = ch, i + 1
    pieces.append((sign, text[start:].strip()))
    return pieces


def _is_exponent_sign(text: str, i: int) -> bool:
    """Whether the sign at ``i`` belongs to a number like ``1e-5``."""
    return bool(re.search(r"(?<![A-Za-z_.])\d+(\.\d*)?[eE]$", text[:i]))


def split_top(text: str, sep: str) -> list[str]:
    """Split on a top-level separator, stripping the parts."""
    cuts = top_positions(text, sep)
    parts: list[str] = []
    start = 0
    for cut in cuts:
        parts.append(text[start:cut].strip())
        start = cut + len(sep)
    parts.append(text[start:].strip())
    return parts


def is_name(text: str) -> bool:
    """Whether ``text`` is one column name (an identifier or a backtick-quoted name)."""
    return _NAME.fullmatch(text.strip()) is not None


def strip_backticks(name: str) -> str:
    """``"`my col`"`` gives ``"my col"``; other names are returned stripped."""
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == "`":
        return name[1:-1]
    return name


def to_python_power(text: str) -> str:
    """Rewrite R's ``^`` as Python's ``**`` everywhere outside quotes."""
    level = depths(text)
    return "".join("**" if ch == "^" and level[i] is not None else ch for i, ch in enumerate(text))


def rewrite_power_in_I(text: str) -> str:
    """Rewrite ``^`` to ``**`` inside every ``I(...)`` call, leaving the rest alone.

    Outside ``I()``, formulaic reads ``^`` as an interaction power
    (``(a + b)^2``), so only arithmetic inside ``I()`` is rewritten.
    """
    out: list[str] = []
    i = 0
    for match in re.finditer(r"(?<![A-Za-z0-9_.])I\s*\(", text):
        open_at = match.end() - 1
        if open_at < i:
            continue
        close_at = matching_close(text, open_at)
        out.append(text[i : open_at + 1])
        out.append(to_python_power(text[open_at + 1 : close_at]))
        i = close_at
    out.append(text[i:])
    return "".join(out)


def bare_groups(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every parenthesised group not preceded by a function name."""
    level = depths(text)
    groups: list[tuple[int, int]] = []
    for i, ch in enumerate(text):
        if ch == "(" and level[i] is not None:
            before = text[:i].rstrip()
            if before and (before[-1].isalnum() or before[-1] in "_.`"):
                continue
            groups.append((i, matching_close(text, i)))
    return groups
