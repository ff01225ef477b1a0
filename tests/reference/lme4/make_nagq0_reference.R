# GLMMs fitted by glmer with nAGQ = 0: theta optimised with the fixed effects updated inside
# PIRLS, no second stage. glmer computes no Hessian for nAGQ = 0, so vcov() is
# (R_X' R_X)^-1 of the joint PIRLS system (use.hessian is moot: optinfo$derivs is NULL).
# Data: cbpp and grouseticks from hiermodels/datasets/data; the bernoulli data of
# tests/reference/lme4/bernoulli_probit_seed25.csv (see make_probit_reference.R) with the
# logit link.
# Run from the repository root: Rscript tests/reference/lme4/make_nagq0_reference.R
suppressMessages({library(lme4); library(jsonlite)})
data_dir <- "hiermodels/datasets/data"
out_dir <- "tests/reference/lme4"

record <- function(id, formula, family, call, data) {
  fit <- eval(parse(text = call))
  vc <- as.data.frame(VarCorr(fit))
  out <- list(
    id = id, formula = formula, family = family, call = call,
    fixef = as.list(fixef(fit)),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    theta = as.list(getME(fit, "theta")),
    varcorr = data.frame(grp = vc$grp, var1 = vc$var1, sdcor = vc$sdcor),
    logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"), nobs = nobs(fit),
    hessian_computed = !is.null(fit@optinfo$derivs),
    feval = fit@optinfo$feval,
    provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                      Matrix = as.character(packageVersion("Matrix")),
                      date = format(Sys.Date()))
  )
  write_json(out, file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE)
}

cbpp <- read.csv(file.path(data_dir, "cbpp.csv"),
                 colClasses = c(herd = "factor", period = "factor"))
record("cbpp_binomial_nagq0", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       "binomial",
       "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 0)")

grouseticks <- read.csv(file.path(data_dir, "grouseticks.csv"),
                        colClasses = c(INDEX = "factor", BROOD = "factor",
                                       LOCATION = "factor", YEAR = "factor"))
record("grouseticks_poisson_nagq0", "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", "poisson",
       "glmer(TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION), data = grouseticks, family = poisson, nAGQ = 0)")

bern <- read.csv(file.path(out_dir, "bernoulli_probit_seed25.csv"), colClasses = c(g = "factor"))
record("bernoulli_logit_seed25_nagq0", "y ~ x + (1 | g)", "bernoulli",
       "glmer(y ~ x + (1 | g), data = bern, family = binomial, nAGQ = 0)")
