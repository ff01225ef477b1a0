# Negative-binomial GLMMs (NB2: Var(y) = mu + mu^2 / alpha, log link) fitted by glmmTMB
# (family = nbinom2, the exact Laplace approximation via TMB) and, as a second check, by
# lme4's glmer.nb (which maximises glmer's Laplace approximation, with IRLS weights, over
# theta = alpha by alternating with glmer fits).
#
# Data: grouseticks and cbpp from hiermodels/datasets/data, and a simulated correlated
# random slope written to tests/reference/glmmTMB/nbinom_slope_seed1.csv by
#   python -c "from tests.mle.simulate_nbinom import nbinom_slope; nbinom_slope(1).to_csv('tests/reference/glmmTMB/nbinom_slope_seed1.csv', index=False)"
# Run from the repository root: Rscript tests/reference/glmmTMB/make_nbinom_reference.R
# Each JSON file records R and package versions and the date in "provenance", and the
# exact calls. glmmTMB's dispersion is sigma(fit); glmer.nb's is getME(fit, "glmer.nb.theta").
suppressMessages({library(lme4); library(glmmTMB); library(jsonlite)})
data_dir <- "hiermodels/datasets/data"
out_dir <- "tests/reference/glmmTMB"

tmb_varcorr <- function(fit) {
  rows <- list()
  for (grp in names(VarCorr(fit)$cond)) {
    m <- VarCorr(fit)$cond[[grp]]
    sds <- attr(m, "stddev")
    corr <- attr(m, "correlation")
    for (i in seq_along(sds)) {
      rows[[length(rows) + 1]] <- list(grp = grp, var1 = names(sds)[i], var2 = NA,
                                       sdcor = unname(sds[i]))
    }
    if (length(sds) > 1) {
      for (i in 1:(length(sds) - 1)) for (j in (i + 1):length(sds)) {
        rows[[length(rows) + 1]] <- list(grp = grp, var1 = names(sds)[i],
                                         var2 = names(sds)[j], sdcor = corr[i, j])
      }
    }
  }
  rows
}

record <- function(id, formula, family, data_note, tmb_call, nb_call, data) {
  tmb <- eval(parse(text = tmb_call))
  nb <- suppressWarnings(eval(parse(text = nb_call)))
  re <- as.data.frame(ranef(tmb, condVar = TRUE))
  nb_vc <- as.data.frame(VarCorr(nb))
  out <- list(
    id = id, formula = formula, family = family, data = data_note,
    glmmTMB = list(
      call = tmb_call,
      fixef = as.list(fixef(tmb)$cond),
      fixef_se = as.list(sqrt(diag(vcov(tmb)$cond))),
      varcorr = tmb_varcorr(tmb),
      dispersion = sigma(tmb),
      logLik = as.numeric(logLik(tmb)), df = attr(logLik(tmb), "df"), nobs = nobs(tmb),
      convergence = tmb$fit$convergence, pdHess = tmb$sdr$pdHess,
      ranef = data.frame(grpvar = re$grpvar, term = re$term, grp = re$grp,
                         condval = re$condval, condsd = re$condsd)
    ),
    glmer.nb = list(
      call = nb_call,
      fixef = as.list(fixef(nb)),
      fixef_se = as.list(sqrt(diag(as.matrix(vcov(nb))))),
      varcorr = data.frame(grp = nb_vc$grp, var1 = nb_vc$var1, var2 = nb_vc$var2,
                           sdcor = nb_vc$sdcor),
      theta = getME(nb, "glmer.nb.theta"),
      logLik = as.numeric(logLik(nb)),
      convergence_messages = as.list(nb@optinfo$conv$lme4$messages)
    ),
    provenance = list(R = R.version.string,
                      lme4 = as.character(packageVersion("lme4")),
                      glmmTMB = as.character(packageVersion("glmmTMB")),
                      TMB = as.character(packageVersion("TMB")),
                      Matrix = as.character(packageVersion("Matrix")),
                      date = format(Sys.Date()))
  )
  write_json(out, file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null")
}

grouseticks <- read.csv(file.path(data_dir, "grouseticks.csv"),
                        colClasses = c(INDEX = "factor", BROOD = "factor",
                                       LOCATION = "factor", YEAR = "factor"))
record("grouseticks_nbinom2",
       "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", "negativebinomial",
       "hiermodels/datasets/data/grouseticks.csv",
       "glmmTMB(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), data = grouseticks, family = nbinom2)",
       "glmer.nb(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), data = grouseticks)")

cbpp <- read.csv(file.path(data_dir, "cbpp.csv"),
                 colClasses = c(herd = "factor", period = "factor"))
record("cbpp_nbinom2_offset",
       "incidence ~ period + (1 | herd)", "negativebinomial",
       "hiermodels/datasets/data/cbpp.csv; offset log(size) (hiermodels: offset=np.log(size))",
       "glmmTMB(incidence ~ period + offset(log(size)) + (1 | herd), data = cbpp, family = nbinom2)",
       "glmer.nb(incidence ~ period + offset(log(size)) + (1 | herd), data = cbpp)")

slope <- read.csv(file.path(out_dir, "nbinom_slope_seed1.csv"), colClasses = c(g = "factor"))
record("nbinom_slope_seed1",
       "y ~ x + (x | g)", "negativebinomial",
       "tests/reference/glmmTMB/nbinom_slope_seed1.csv (tests/mle/simulate_nbinom.py, seed 1)",
       "glmmTMB(y ~ x + (x | g), data = slope, family = nbinom2)",
       "glmer.nb(y ~ x + (x | g), data = slope)")
