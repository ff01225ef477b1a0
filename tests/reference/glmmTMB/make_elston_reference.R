# lme4's own test model on the grouse-tick data (lme4 tests/elston.R: HEIGHT left uncentred),
# fitted by glmmTMB (the exact Laplace approximation, as hiermodels' default) and glmer.
# Run from the repository root: Rscript tests/reference/glmmTMB/make_elston_reference.R
suppressMessages({library(lme4); library(glmmTMB); library(jsonlite)})
d <- read.csv("hiermodels/datasets/data/grouseticks.csv",
              colClasses = c(INDEX = "factor", BROOD = "factor", LOCATION = "factor",
                             YEAR = "factor"))
form <- TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)
tmb <- glmmTMB(form, data = d, family = poisson)
mer <- glmer(form, data = d, family = poisson)
out <- list(
  id = "grouseticks_elston",
  formula = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
  family = "poisson",
  glmmTMB = list(call = "glmmTMB(form, data = d, family = poisson)",
                 fixef = as.list(fixef(tmb)$cond), logLik = as.numeric(logLik(tmb)),
                 sd = lapply(VarCorr(tmb)$cond, function(v) attr(v, "stddev"))),
  glmer = list(call = "glmer(form, data = d, family = poisson)",
               fixef = as.list(fixef(mer)), logLik = as.numeric(logLik(mer)),
               deviance = as.numeric(deviance(mer)),
               convergence_messages = as.list(mer@optinfo$conv$lme4$messages)),
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    glmmTMB = as.character(packageVersion("glmmTMB")))
)
write_json(out, "tests/reference/glmmTMB/grouseticks_elston.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
