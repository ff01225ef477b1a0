"""Names shared across the package: defaults and labels every result uses alike."""

#: Probability of every reported interval unless the caller passes ``ci_prob``.
DEFAULT_CI_PROB = 0.95
