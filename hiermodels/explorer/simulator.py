"""Settings of the simulator page; its draws and estimates are made in the page."""

from __future__ import annotations

from typing import Any

__all__ = ["simulator_payload"]


def simulator_payload(
    *, k: int = 10, tau: float = 1.0, sigma: float = 1.0, seed: int = 1, reps: int = 200
) -> dict[str, Any]:
    """Start values of the simulator's sliders.

    Parameters
    ----------
    k : int, default 10
        Number of groups, 2 to 40.
    tau : float, default 1
        True SD of the group means (their mean is 0).
    sigma : float, default 1
        Sampling SD of each group's estimate.
    seed : int, default 1
        Seed of the page's random numbers.
    reps : int, default 200
        Replicated data sets per number of groups in the risk curves.

    Returns
    -------
    dict
        JSON-ready payload.
    """
    if not (isinstance(k, int) and 2 <= k <= 40):
        raise ValueError(f"k must be a whole number from 2 to 40, got {k!r}")
    for name, value in (("tau", tau), ("sigma", sigma)):
        if not (isinstance(value, int | float) and 0 < value <= 10):
            raise ValueError(f"{name} must be a number in (0, 10], got {value!r}")
    if not (isinstance(reps, int) and 10 <= reps <= 5000):
        raise ValueError(f"reps must be a whole number from 10 to 5000, got {reps!r}")
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, got {seed!r}")
    return {
        "k": k,
        "tau": float(tau),
        "sigma": float(sigma),
        "seed": seed,
        "reps": reps,
        "k_max": 40,
    }
