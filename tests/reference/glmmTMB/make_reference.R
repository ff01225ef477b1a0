# Reference fits of the GLMMs by glmmTMB (exact Laplace approximation via TMB).
# Run from the repository root: Rscript tests/reference/glmmTMB/make_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
data_dir <- "hiermodels/datasets/data"
out_dir <- "tests/reference/glmmTMB"

record <- function(id, fit, call) {
  vc <- VarCorr(fit)$cond
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  out <- list(
    id = id, call = call, logLik = as.numeric(logLik(fit)),
    fixef = as.list(fixef(fit)$cond),
    fixef_se = as.list(sqrt(diag(vcov(fit)$cond))),
    sd = lapply(vc, function(m) sqrt(m[1, 1])),
    ranef = data.frame(grpvar = re$grpvar, term = re$term, grp = re$grp,
                       condval = re$condval, condsd = re$condsd),
    provenance = list(R = R.version.string,
                      glmmTMB = as.character(packageVersion("glmmTMB")),
                      TMB = as.character(packageVersion("TMB")))
  )
  write_json(out, file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE)
}

cbpp <- read.csv(file.path(data_dir, "cbpp.csv"),
                 colClasses = c(herd = "factor", period = "factor"))
call <- "glmmTMB(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)"
record("cbpp_binomial_laplace", eval(parse(text = call)), call)

grouseticks <- read.csv(file.path(data_dir, "grouseticks.csv"),
                        colClasses = c(BROOD = "factor", YEAR = "factor",
                                       LOCATION = "factor", INDEX = "factor"))
call <- "glmmTMB(TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION), data = grouseticks, family = poisson)"
record("grouseticks_poisson_laplace", eval(parse(text = call)), call)

# A probit GLMM: the exact Laplace approximation with TMB's Hessian of the joint
# log-density, i.e. the observed information of the probit link. Data:
# tests/reference/lme4/bernoulli_probit_seed25.csv (written as
# tests/reference/lme4/make_probit_reference.R describes).
d <- read.csv("tests/reference/lme4/bernoulli_probit_seed25.csv", colClasses = c(g = "factor"))
call <- "glmmTMB(y ~ x + (1 | g), data = d, family = binomial(link = \"probit\"))"
record("bernoulli_probit_seed25", eval(parse(text = call)), call)
