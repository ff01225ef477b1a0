# lme4's fits with prior weights: Gaussian precision weights (Var(y_i) = sigma^2 / w_i)
# and binomial weights as numbers of trials. The weights of sleepstudy and radon are
# drawn here from a fixed seed and stored in each JSON (`weights`, in data order);
# cbpp's are the herd sizes, as in MixedModels.jl's weighted-LMM test
# (`incid/hsz ~ 1 + period + (1|herd)`, wts = hsz).
# Writes *_weighted_*.json. Run from the repository root:
#   Rscript tests/reference/lme4/make_weights_reference.R
suppressMessages({library(lme4); library(jsonlite)})
dir <- "tests/reference/lme4"
data_dir <- "../shared/data"
if (!dir.exists(data_dir)) data_dir <- "/work/shared/data"

record <- function(id, dataset, formula, call, fit, weights) {
  vc <- as.data.frame(VarCorr(fit))
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  gaussian <- !isGLMM(fit)
  reml <- gaussian && isREML(fit)
  out <- list(
    id = id, dataset = dataset, formula = formula,
    family = family(fit)$family,
    method = if (!gaussian) "Laplace" else if (reml) "REML" else "ML",
    nobs = nobs(fit), ngrps = as.list(ngrps(fit)),
    weights = unname(weights),
    fixef = as.list(fixef(fit)),
    fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
    vcov_fixef = unname(as.matrix(vcov(fit))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) as.list(vc[i, ])),
    sigma = sigma(fit), theta = unname(getME(fit, "theta")),
    logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"),
    AIC = AIC(fit), BIC = BIC(fit),
    REMLcrit = if (reml) REMLcrit(fit) else NULL,
    deviance_ml = if (gaussian && !reml) deviance(fit) else NULL,
    singular = isSingular(fit),
    ranef = data.frame(grpvar = re$grpvar, term = as.character(re$term),
                       grp = as.character(re$grp), condval = re$condval, condsd = re$condsd),
    provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                      Matrix = as.character(packageVersion("Matrix")), call = call)
  )
  write_json(out, file.path(dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null")
}

ss <- read.csv(file.path(data_dir, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
set.seed(15)
ss$w <- round(runif(nrow(ss), 0.25, 4), 3)
for (reml in c(TRUE, FALSE)) {
  fit <- lmer(Reaction ~ Days + (Days | Subject), data = ss, weights = w, REML = reml)
  record(paste0("sleepstudy_slope_weighted_", if (reml) "reml" else "ml"), "sleepstudy",
         "Reaction ~ Days + (Days | Subject)",
         paste0("set.seed(15); w <- round(runif(180, 0.25, 4), 3); ",
                "lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, weights = w, ",
                "REML = ", reml, ")"), fit, ss$w)
}

radon <- read.csv(file.path(data_dir, "radon.csv"))
radon$county <- factor(radon$county)
set.seed(16)
radon$w <- round(rexp(nrow(radon)) + 0.1, 3)
fit <- lmer(log_radon ~ floor + (1 | county), data = radon, weights = w)
record("radon_intercept_weighted_reml", "radon", "log_radon ~ floor + (1 | county)",
       paste0("set.seed(16); w <- round(rexp(919) + 0.1, 3); ",
              "lmer(log_radon ~ floor + (1 | county), data = radon, weights = w)"),
       fit, radon$w)

cbpp <- read.csv(file.path(data_dir, "cbpp.csv"))
cbpp$herd <- factor(cbpp$herd)
cbpp$period <- factor(cbpp$period)
for (reml in c(TRUE, FALSE)) {
  fit <- lmer(incidence / size ~ period + (1 | herd), data = cbpp, weights = size, REML = reml)
  record(paste0("cbpp_gaussian_weighted_", if (reml) "reml" else "ml"), "cbpp",
         "incidence / size ~ period + (1 | herd)",
         paste0("lmer(incidence / size ~ period + (1 | herd), data = cbpp, weights = size, ",
                "REML = ", reml, ")"), fit, cbpp$size)
}
fit <- glmer(incidence / size ~ period + (1 | herd), data = cbpp, weights = size,
             family = binomial)
record("cbpp_binomial_weighted_laplace", "cbpp", "incidence / size ~ period + (1 | herd)",
       paste0("glmer(incidence / size ~ period + (1 | herd), data = cbpp, weights = size, ",
              "family = binomial)"), fit, cbpp$size)
