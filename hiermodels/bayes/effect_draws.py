"""The group effects of the marginal graph, drawn from their exact conditional.

:func:`~hiermodels.bayes.marginal_graph.build_marginal_model` integrates the effects
of a gaussian model with one grouping factor out of the graph the sampler
runs on; :func:`conditional_effects` draws them back, one per posterior draw.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import xarray as xr

from hiermodels.bayes.marginal_density import effect_arrays
from hiermodels.bayes.marginal_graph import FactorStatistics, factor_cholesky, precision_terms
from hiermodels.design.design import Design
from hiermodels.names import correlation_name, sd_name

__all__ = ["conditional_effects"]


def conditional_effects(
    posterior: xr.Dataset, design: Design, rng: np.random.Generator
) -> dict[str, xr.DataArray]:
    """Draw ``z_<g>`` and ``u_<g>`` from their Gaussian conditional, one per posterior draw.

    For the models of :func:`~hiermodels.bayes.marginal_graph.build_marginal_model`:
    given ``beta``, the SDs, the correlation and ``sigma``, the offsets of
    level ``j`` are ``z_j ~ N(A_j^{-1} c_j / sigma^2, A_j^{-1})`` with
    ``A_j = I + L' Z_j' Z_j L / sigma^2`` and ``c_j = L' Z_j' (y_j - X_j beta)``,
    and ``u_j = L z_j`` (``L`` the Cholesky factor of the effects' covariance).

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>``, dims ``(chain, draw, <g>, <g>__term)``.
    """
    (layout,) = design.factors
    g, q = layout.group, len(layout.terms)
    stats = FactorStatistics.from_design(design)
    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    sds = [
        posterior[sd_name(g, t)].transpose("chain", "draw").values[..., None] for t in layout.terms
    ]
    sigma = posterior["sigma"].transpose("chain", "draw").values[..., None]
    correlated = bool(layout.correlated_spans)
    r = posterior[correlation_name(g)].values[..., 0, 1][..., None] if correlated else 0.0
    # the one-factor algebra the graph uses, here on numpy arrays of draws
    l00, l10, l11 = cast(tuple[np.ndarray, ...], factor_cholesky(sds, r, correlated))
    h = stats.Zty - np.einsum("gqp,cdp->cdgq", stats.ZtX, beta)
    a00, a01, a11, c0, c1 = cast(
        tuple[np.ndarray, ...],
        precision_terms(stats, (l00, l10, l11), sigma, h[..., 0], h[..., 1] if q == 2 else 0.0),
    )
    s2 = sigma**2
    eps = rng.standard_normal((*h.shape[:-1], q))
    if q == 1:
        z = (c0 / (a00 * s2) + eps[..., 0] / np.sqrt(a00))[..., None]
        u = l00[..., None] * z
    else:
        det = a00 * a11 - a01**2
        r00 = np.sqrt(a00)
        r10 = a01 / r00
        r11 = np.sqrt(a11 - r10**2)
        z1 = (a00 * c1 - a01 * c0) / (det * s2) + eps[..., 1] / r11  # mean + R^{-T} eps
        z0 = (a11 * c0 - a01 * c1) / (det * s2) + (eps[..., 0] - r10 * eps[..., 1] / r11) / r00
        z = np.stack([z0, z1], axis=-1)
        u = np.stack([l00 * z0, l10 * z0 + l11 * z1], axis=-1)
    return effect_arrays(posterior, layout, z, u)
