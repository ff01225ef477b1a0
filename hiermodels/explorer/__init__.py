"""Interactive shrinkage explorers: one self-contained HTML page per call.

:func:`explore` turns a compound model, a table of estimates and standard
errors, a shipped teaching dataset, a one-factor linear mixed model fit or
the word ``"simulator"`` into an :class:`Explorer`: a page with sliders over
the hyperparameters whose every number is the package's own at the chosen
value. Scripts, styles and data are inline; the page never touches the
network, opens from a file and displays inline in Jupyter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hiermodels.explorer.page import Explorer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COMPOUND_DATASETS", "Explorer", "explore"]

#: Shipped datasets the explorer opens by name, with their aliases.
COMPOUND_DATASETS: dict[str, str] = {
    "efron_morris_1970": "efron_morris_1970",
    "baseball": "efron_morris_1970",
    "eight_schools": "eight_schools",
    "rats_tumors": "rats_tumors",
}

#: Options each kind of explorer takes.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "normal": ("ci_prob", "hyperpriors"),
    "beta_binomial": (),
    "mixed": (),
    "simulator": ("k", "tau", "sigma", "seed", "reps"),
}

_ACCEPTED = (
    "a NormalNormal or BetaBinomial model, a DataFrame with columns y and se, a one-factor "
    "linear mixed model fit (MixedFit), 'simulator', or one of the datasets "
    "'efron_morris_1970' (alias 'baseball'), 'eight_schools', 'rats_tumors'"
)


def _check_options(kind: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        allowed = ", ".join(_OPTIONS[kind]) or "none"
        raise TypeError(
            f"explore() of a {kind.replace('_', '–')} source got unknown options {unknown}; "
            f"it takes: {allowed}"
        )


def _baseball(options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    from hiermodels.explorer.normal import normal_payload
    from hiermodels.plots.compound import baseball_estimates, baseball_model

    table = baseball_estimates()
    model = baseball_model()
    payload = normal_payload(
        model, truth=table["truth"].to_numpy(), value_name="batting average", **options
    )
    return "normal", payload, "Efron–Morris baseball: batting averages after 45 at-bats"


def _eight_schools(options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    from hiermodels import datasets
    from hiermodels.compound.normal import NormalNormal
    from hiermodels.explorer.normal import normal_payload

    data = datasets.load("eight_schools")
    model = NormalNormal(data["y"], data["sigma"], units=data["school"].astype(str))
    payload = normal_payload(model, value_name="coaching effect", **options)
    return "normal", payload, "Eight schools: coaching effects on SAT scores"


def _rats(options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    import pandas as pd

    from hiermodels import datasets
    from hiermodels.compound.betabinomial import BetaBinomial
    from hiermodels.explorer.beta import beta_binomial_payload

    data = datasets.load("rats_tumors")
    labels = pd.Index([f"{i + 1}" for i in range(len(data))], name="experiment")
    model = BetaBinomial(data["y"], data["K"], units=labels)
    return "beta_binomial", beta_binomial_payload(model), "Rat tumours: 71 historical experiments"


_DATASETS: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any], str]]] = {
    "efron_morris_1970": _baseball,
    "eight_schools": _eight_schools,
    "rats_tumors": _rats,
}


def _from_frame(frame: pd.DataFrame, options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    import pandas as pd

    from hiermodels.compound.normal import NormalNormal
    from hiermodels.explorer.normal import normal_payload

    missing = [c for c in ("y", "se") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"a table for the explorer needs columns y and se (estimates and their standard "
            f"errors); it lacks {missing}, it has {list(frame.columns)}"
        )
    labels = [c for c in frame.columns if c not in ("y", "se")]
    units = frame[labels[0]].astype(str) if labels else None
    for column in ("y", "se"):
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().any():
            raise ValueError(f"column {column} must hold numbers, with no missing values")
    model = NormalNormal(frame["y"].to_numpy(float), frame["se"].to_numpy(float), units=units)
    return "normal", normal_payload(model, **options), "Normal–normal shrinkage"


def _resolve(source: Any, options: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """The kind of explorer, its payload and a default title."""
    import pandas as pd

    from hiermodels.compound.betabinomial import BetaBinomial
    from hiermodels.compound.normal import NormalNormal
    from hiermodels.mle.results import MixedFit

    if isinstance(source, str):
        name = source.strip().lower()
        if name == "simulator":
            from hiermodels.explorer.simulator import simulator_payload

            _check_options("simulator", options)
            return "simulator", simulator_payload(**options), "Simulator: the risk of shrinkage"
        if name in COMPOUND_DATASETS:
            dataset = COMPOUND_DATASETS[name]
            kind = "beta_binomial" if dataset == "rats_tumors" else "normal"
            _check_options(kind, options)
            return _DATASETS[dataset](options)
        from hiermodels import datasets

        if name in datasets.available():
            raise ValueError(
                f"{source!r} is a mixed-model dataset: fit a one-factor model first and explore "
                f"the fit, e.g. hm.explore(hm.Model(formula, hm.datasets.load({name!r}))"
                ".fit_mle())"
            )
        raise ValueError(f"explore() cannot open {source!r}; it takes {_ACCEPTED}")
    if isinstance(source, NormalNormal):
        from hiermodels.explorer.normal import normal_payload

        _check_options("normal", options)
        return "normal", normal_payload(source, **options), "Normal–normal shrinkage"
    if isinstance(source, BetaBinomial):
        from hiermodels.explorer.beta import beta_binomial_payload

        _check_options("beta_binomial", options)
        return "beta_binomial", beta_binomial_payload(source), "Beta–binomial shrinkage"
    if isinstance(source, pd.DataFrame):
        _check_options("normal", options)
        return _from_frame(source, options)
    if isinstance(source, MixedFit):
        from hiermodels.explorer.mixed import mixed_payload

        _check_options("mixed", options)
        payload = mixed_payload(source)
        return "mixed", payload, f"Shrinkage in {payload['formula']}"
    raise TypeError(f"explore() cannot open a {type(source).__name__}; it takes {_ACCEPTED}")


def explore(source: Any, *, title: str | None = None, **options: Any) -> Explorer:
    """An interactive page showing how shrinkage moves with the hyperparameters.

    Parameters
    ----------
    source : NormalNormal, BetaBinomial, pandas.DataFrame, MixedFit or str
        A compound model; a table with columns ``y`` and ``se`` (and
        optionally a label column); a REML/ML fit of a linear mixed model
        with one random-effect term (scalar or vector); ``"simulator"``; or
        a shipped teaching dataset: ``"efron_morris_1970"`` (``"baseball"``),
        ``"eight_schools"``, ``"rats_tumors"``.
    title : str, optional
        Heading of the page (default: from the source).
    **options
        Normal–normal sources: ``ci_prob`` (default 0.95) and
        ``hyperpriors`` (see :meth:`NormalNormal.pymc_model`). The
        simulator: ``k``, ``tau``, ``sigma``, ``seed``, ``reps`` (the
        sliders' start values, see
        :func:`~hiermodels.explorer.simulator.simulator_payload`).

    Returns
    -------
    Explorer
        ``.html`` is the page, ``.save(path)`` writes it, and notebooks show
        it inline.

    Raises
    ------
    TypeError
        For a source of another type (e.g. a Bayesian fit) or an option the
        source does not take.
    ValueError
        For a source of the right type the explorer cannot show: a GLMM, a
        fit with crossed or nested grouping factors, a table without ``y``
        and ``se``.
    """
    kind, payload, default_title = _resolve(source, dict(options))
    return Explorer(
        kind=kind, title=default_title if title is None else str(title), payload=payload
    )
