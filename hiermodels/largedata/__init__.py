"""Fits from data larger than memory: a Dask DataFrame reduced to summed statistics.

:func:`~hiermodels.largedata.statistics.dask_design` builds a
:class:`~hiermodels.design.design.Design` from a ``dask.dataframe.DataFrame``
in passes over its partitions on whatever Dask scheduler is active (the
local threads by default, a ``dask.distributed`` cluster when a ``Client``
exists):

1. the encoding is learned and frozen — the formula's columns, the levels of
   every categorical covariate (a pass over those columns alone), the
   formulaic model specs (from a few rows cast to those levels);
2. every partition computes its cells' statistics — for a Gaussian model the
   moment matrices ``Σ w v vᵀ`` of ``v = [1 X Z-covariates y]`` per cell of
   grouping levels; for a binomial or Poisson GLMM the sums of successes and
   trials, or counts and exposures, per cell of identical covariates and
   levels — and the partitions' tables are summed in a tree.

The driver receives the cells alone; :mod:`hiermodels.design.compressed`
turns them into a design every engine fits as it fits a design of rows.
Row-level outputs of such a fit (:mod:`hiermodels.largedata.rows`) are Dask
collections computed on the source frame. Dask is an optional dependency
(``pip install hiermodels[dask]``), imported only here.
"""
