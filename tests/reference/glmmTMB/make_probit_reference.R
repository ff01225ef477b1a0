# Reference fit of a probit GLMM by glmmTMB (exact Laplace approximation: TMB's Hessian
# of the joint log-density, i.e. the observed information of the probit link).
# Data: tests/reference/lme4/bernoulli_probit_seed25.csv (see
# tests/reference/lme4/make_probit_reference.R for how it was written).
# Run from the repository root: Rscript tests/reference/glmmTMB/make_probit_reference.R
suppressMessages({library(glmmTMB); library(jsonlite)})
out_dir <- "tests/reference/glmmTMB"
d <- read.csv("tests/reference/lme4/bernoulli_probit_seed25.csv", colClasses = c(g = "factor"))
call <- "glmmTMB(y ~ x + (1 | g), data = d, family = binomial(link = \"probit\"))"
fit <- eval(parse(text = call))
vc <- VarCorr(fit)$cond
re <- as.data.frame(ranef(fit, condVar = TRUE))
out <- list(
  id = "bernoulli_probit_seed25", call = call, logLik = as.numeric(logLik(fit)),
  fixef = as.list(fixef(fit)$cond),
  fixef_se = as.list(sqrt(diag(vcov(fit)$cond))),
  sd = lapply(vc, function(m) sqrt(m[1, 1])),
  ranef = data.frame(grpvar = re$grpvar, term = re$term, grp = re$grp,
                     condval = re$condval, condsd = re$condsd),
  provenance = list(R = R.version.string,
                    glmmTMB = as.character(packageVersion("glmmTMB")),
                    TMB = as.character(packageVersion("TMB")),
                    data = "tests/reference/lme4/bernoulli_probit_seed25.csv")
)
write_json(out, file.path(out_dir, "bernoulli_probit_seed25.json"), digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
