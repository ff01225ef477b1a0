"""The formula and design stage: an lme4 formula and a data frame become a :class:`Design`.

:func:`parse_formula` reads the formula into a :class:`FormulaSpec`,
:func:`build_design` builds the response, the fixed-effects matrix and the
grouping factors' random-effects columns from it, and :func:`get_family`
names the response distribution and link. Every engine (MLE, EB, full
Bayes) starts from the same :class:`Design`.
"""

from hiermodels.design.design import Design, build_design
from hiermodels.design.families import Family, get_family
from hiermodels.design.formula import FormulaSpec, parse_formula

__all__ = ["Design", "FormulaSpec", "Family", "build_design", "get_family", "parse_formula"]
