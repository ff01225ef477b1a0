"""Names shared across hiermodels: the default interval probability and parameter names."""

#: Probability of the intervals every summary reports unless told otherwise.
DEFAULT_CI_PROB = 0.95
