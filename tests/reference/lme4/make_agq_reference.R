# cbpp by adaptive Gauss-Hermite quadrature (glmer, nAGQ = 25).
# Run from the repository root: Rscript tests/reference/lme4/make_agq_reference.R
suppressMessages({library(lme4); library(jsonlite)})
cbpp <- read.csv("hiermodels/datasets/data/cbpp.csv",
                 colClasses = c(herd = "factor", period = "factor"))
fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
             family = binomial, nAGQ = 25)
out <- list(
  id = "cbpp_binomial_agq25",
  call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 25)",
  fixef = as.list(fixef(fit)), theta = unname(getME(fit, "theta")),
  logLik = as.numeric(logLik(fit)), deviance = deviance(fit),
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
write_json(out, "tests/reference/lme4/cbpp_binomial_agq25.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
