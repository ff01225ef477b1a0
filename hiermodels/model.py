"""The user-facing :class:`Model`: one lme4-style formula, one data frame, every fit.

``Model`` stays thin: it parses the formula and builds the design once, and
each method is a single call into a pipeline stage (marginal likelihood,
PyMC graph, sampling).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hiermodels.design.design import Design, build_design
from hiermodels.design.families import Family, get_family
from hiermodels.design.formula import FormulaSpec, parse_formula

if TYPE_CHECKING:
    # the engines are imported by the methods that run them
    from hiermodels.bayes.priors import Prior, Priors
    from hiermodels.bayes.results import BayesFit
    from hiermodels.eb.fit import EBFit
    from hiermodels.mle.results import MixedFit

__all__ = ["Model"]


class Model:
    """A mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``,
        ``"y ~ x + (1 | school/class)"``, ``"cbind(s, f) ~ period + (1 | herd)"``.
    data : pandas.DataFrame or dask.dataframe.DataFrame
        The data; columns named in the formula. A Dask DataFrame is reduced
        to its cells' summed statistics in passes on the active Dask
        scheduler (:mod:`hiermodels.largedata`): Gaussian models of any
        random-effect structure, and binomial, Bernoulli and Poisson GLMMs
        by aggregating identical rows; offsets and weights are then column
        names. See also :meth:`from_parquet`.
    family : str or Family
        ``"gaussian"`` (default), ``"bernoulli"``, ``"binomial"``,
        ``"poisson"``, ``"negativebinomial"``, ``"gamma"`` or
        ``"inverse_gaussian"``.
    link : str, optional
        Link function (the family's default, the first of
        :data:`~hiermodels.design.families.FAMILY_LINKS`, when omitted).
    missing : {"drop", "raise"}
        Rows with missing values in used columns are dropped with a warning
        (default) or raise an error.
    offset : str or array-like, optional
        Offset on the linear-predictor scale: a column name or an array.
    weights : str or array-like, optional
        Prior weights, a column name or an array: precision weights for the
        Gaussian family (``Var(y_i) = σ² / w_i``, as lme4), numbers of
        trials for the binomial and bernoulli families with the response a
        proportion (as glm and glmer; a bernoulli model with weights is
        fitted as that binomial model). Rows with weight zero are dropped;
        other families refuse weights (see
        :func:`~hiermodels.design.design.build_design`).

    Examples
    --------
    >>> import hiermodels as hm
    >>> sleep = hm.datasets.load("sleepstudy")
    >>> fit = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()
    >>> round(fit.fixef["Days"], 3)
    10.467
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        *,
        link: str | None = None,
        missing: str = "drop",
        offset: str | np.ndarray | None = None,
        weights: str | ArrayLike | None = None,
        progress: bool = True,
    ) -> None:
        from hiermodels.largedata.statistics import dask_design, is_dask_frame

        self._spec = parse_formula(formula)
        family_object = get_family(family, link)
        if is_dask_frame(data):
            self._design = dask_design(
                self._spec,
                data,
                family_object,
                missing=missing,
                offset=offset,
                weights=weights,
                progress=progress,
            )
            self._family = self._design.family
            return
        self._design = build_design(
            self._spec,
            data,
            family_object,
            missing=missing,
            offset=offset,
            weights=weights if weights is None or isinstance(weights, str) else np.asarray(weights),
        )
        self._family = self._design.family

    @classmethod
    def from_parquet(
        cls,
        path: str | Sequence[str],
        formula: str,
        family: str | Family = "gaussian",
        *,
        read_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Model:
        """The model of Parquet files read by Dask, reduced to summed statistics.

        Only the columns the formula (and the offset and weights) use are read.

        Parameters
        ----------
        path : str or sequence of str
            A file, a directory of files or a glob (``"data/*.parquet"``), as
            ``dask.dataframe.read_parquet`` takes it.
        formula : str
        family : str or Family
        read_options : mapping, optional
            Further keywords of ``dask.dataframe.read_parquet``.
        **options
            The keywords of :class:`Model` (``link``, ``missing``, ``offset``,
            ``weights``, ``progress``).

        Returns
        -------
        Model
        """
        from hiermodels.largedata.statistics import read_parquet

        frame = read_parquet(path, parse_formula(formula), options, read_options)
        return cls(formula, frame, family, **options)

    @property
    def spec(self) -> FormulaSpec:
        """The parsed formula."""
        return self._spec

    @property
    def design(self) -> Design:
        """The model's design: response, fixed-effects matrix, random-effect blocks."""
        return self._design

    @property
    def family(self) -> Family:
        """Response family and link."""
        return self._family

    def fit_mle(
        self,
        method: str | None = None,
        *,
        start: np.ndarray | None = None,
        optimizer: str = "quasi-newton",
        theta: np.ndarray | None = None,
        n_agq: int | None = None,
        laplace: str | None = None,
    ) -> MixedFit:
        """Marginal maximum-likelihood fit.

        Linear mixed models go to :func:`hiermodels.mle.fit.fit_lmm`, GLMMs
        to :func:`hiermodels.mle.fit.fit_glmm`.

        Parameters
        ----------
        method : {"REML", "ML", "Laplace"}, optional
            ``"REML"`` (default for Gaussian models) or ``"ML"`` for linear
            mixed models; ``"Laplace"`` (default otherwise) for GLMMs.
        start : numpy.ndarray, optional
            Start values for θ.
        optimizer : {"quasi-newton", "bobyqa"}
            The default quasi-Newton steps on the analytic gradient, or
            lme4's derivative-free path.
        theta : numpy.ndarray, optional
            Linear mixed models only: evaluate the model at this θ instead of
            optimising.
        n_agq : int, optional
            GLMMs only, as glmer's ``nAGQ`` (default 1, the Laplace
            approximation): quadrature nodes for a single scalar
            random-effect term, or 0 for the fast fit that optimises θ alone
            with β inside PIRLS.
        laplace : {"exact", "glmer"}, optional
            GLMMs only: ``"glmer"`` evaluates the Laplace approximation as
            glmer (glmer.nb) does and reproduces lme4's estimates; the
            default ``"exact"`` agrees with glmmTMB.

        Returns
        -------
        MixedFit
            A negative-binomial fit also estimates the dispersion,
            ``MixedFit.alpha`` (``Var(y) = μ + μ²/α``, glmmTMB's ``nbinom2``).

        Raises
        ------
        TypeError
            When an option of the other kind of model is given (``theta`` to
            a GLMM, ``n_agq`` or ``laplace`` to a linear mixed model).
        """
        from hiermodels.mle.fit import fit_glmm, fit_lmm, mle_method

        key = mle_method(self._family, method)
        if self._family.is_gaussian:
            if n_agq is not None or laplace is not None:
                raise TypeError("n_agq= and laplace= apply to GLMMs, not to a Gaussian model")
            return fit_lmm(self._design, key, start=start, theta=theta, optimizer=optimizer)
        if theta is not None:
            raise TypeError("theta= applies to linear mixed models, not to a GLMM")

        return fit_glmm(
            self._design,
            start=start,
            n_agq=1 if n_agq is None else n_agq,
            laplace="exact" if laplace is None else laplace,
            optimizer=optimizer,
        )

    def pymc_model(self, priors: Mapping[str, Any] | None = None) -> Any:
        """The model as a PyMC graph (``pm.Model``) with the default or given priors."""
        from hiermodels.bayes.build import build_pymc_model

        return build_pymc_model(self._design, priors)

    def fit_bayes(
        self,
        *,
        priors: Priors | Mapping[str, Prior] | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        sampler: Literal["nutpie", "pymc"] = "nutpie",
        random_seed: int | None = None,
        progressbar: bool = True,
        fixed_values: Mapping[str, ArrayLike] | None = None,
        log_likelihood: bool | None = None,
        posterior_predictive: bool = False,
        marginalize: bool | None = None,
        backend: Literal["auto", "direct", "numba", "python"] = "auto",
        target_accept: float = 0.8,
        integrate: Literal["laplace"] | None = None,
    ) -> BayesFit:
        """Full-Bayes fit by MCMC (:func:`hiermodels.bayes.fit.fit_bayes`).

        Parameters
        ----------
        priors : Priors or mapping of str to Prior, optional
            Overrides of the default priors (see :mod:`hiermodels.bayes.priors`).
        draws, tune, chains : int
            Kept draws per chain, tuning draws per chain, chains.
        sampler : {"nutpie", "pymc"}
            The NUTS implementation.
        random_seed : int, optional
            Seed of the sampler.
        progressbar : bool
            Show the sampler's progress.
        fixed_values : mapping of str to array_like, optional
            Variables held fixed in the graph (empirical Bayes).
        log_likelihood : bool, optional
            Add the pointwise ``log_likelihood`` group (by default unless too large).
        posterior_predictive : bool
            Add a ``posterior_predictive`` group.
        marginalize : bool, optional
            Integrate the group effects out (Gaussian models; by default
            whenever possible).
        backend : {"auto", "direct", "numba", "python"}
            How nutpie evaluates the model.
        target_accept : float
            The acceptance rate NUTS tunes its step size to.
        integrate : {None, "laplace"}
            ``"laplace"``: an approximate posterior with the group effects
            integrated out by the Laplace approximation (binomial, bernoulli
            and Poisson models).

        Returns
        -------
        BayesFit
        """
        from hiermodels.bayes.fit import fit_bayes

        return fit_bayes(
            self._design,
            priors=priors,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            fixed_values=fixed_values,
            log_likelihood=log_likelihood,
            posterior_predictive=posterior_predictive,
            marginalize=marginalize,
            backend=backend,
            target_accept=target_accept,
            integrate=integrate,
        )

    def fit_eb(
        self,
        *,
        method: str | None = None,
        plugin: str = "hyper",
        eb_method: str | None = None,
        mle: MixedFit | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        sampler: Literal["nutpie", "pymc"] = "nutpie",
        random_seed: int | None = None,
        progressbar: bool = True,
        target_accept: float = 0.8,
        interval: Literal["kass-steffey", "bootstrap"] = "kass-steffey",
        nsim: int = 1000,
    ) -> EBFit:
        """Empirical-Bayes fit (:func:`hiermodels.eb.fit.fit_eb`).

        Parameters
        ----------
        method : str, optional
            Marginal-likelihood method: ``"REML"`` (Gaussian default), ``"ML"``
            or ``"Laplace"`` (default otherwise).
        plugin : {"hyper", "all"}
            Hold the variance parameters at their MLE (default), or the fixed
            effects too.
        eb_method : {"analytic", "quadrature", "mcmc"}, optional
            Closed-form conditional (Gaussian default), adaptive quadrature
            (GLMMs with one scalar term, ``plugin="all"``) or MCMC (GLMM default).
        mle : MixedFit, optional
            A marginal-likelihood fit to reuse instead of fitting again.
        draws, tune, chains, sampler, random_seed, progressbar, target_accept
            MCMC settings (see :meth:`fit_bayes`).
        interval : {"kass-steffey", "bootstrap"}
            Add Laird and Louis's parametric-bootstrap intervals from
            ``nsim`` replicates to the plug-in and Kass–Steffey ones
            (linear mixed models, ``plugin="hyper"``).
        nsim : int
            Bootstrap replicates for ``interval="bootstrap"``.

        Returns
        -------
        EBFit
        """
        from hiermodels.eb.fit import fit_eb

        return fit_eb(
            self._design,
            method=method,
            plugin=plugin,
            eb_method=eb_method,
            mle=mle,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            target_accept=target_accept,
            interval=interval,
            nsim=nsim,
        )

    def __repr__(self) -> str:
        return (
            f"Model({self._spec.formula!r}, family={self._family.name!r}, "
            f"link={self._family.link!r}, nobs={self._design.nobs})"
        )
