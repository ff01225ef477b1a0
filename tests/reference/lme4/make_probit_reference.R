# A bernoulli probit GLMM (glmer, Laplace) on the data of tests/bayes/simulate.py's
# bernoulli(seed=25, link="probit"), written to bernoulli_probit_seed25.csv by
#   python -c "from tests.bayes import simulate; simulate.bernoulli(seed=25, link='probit').data.to_csv('tests/reference/lme4/bernoulli_probit_seed25.csv', index=False)"
# Run from the repository root: Rscript tests/reference/lme4/make_probit_reference.R
suppressMessages({library(lme4); library(jsonlite)})
d <- read.csv("tests/reference/lme4/bernoulli_probit_seed25.csv", colClasses = c(g = "factor"))
fit <- glmer(y ~ x + (1 | g), data = d, family = binomial(link = "probit"))
out <- list(
  id = "bernoulli_probit_seed25",
  call = "glmer(y ~ x + (1 | g), data = d, family = binomial(link = \"probit\"))",
  fixef = as.list(fixef(fit)), fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))),
  theta = unname(getME(fit, "theta")), logLik = as.numeric(logLik(fit)),
  gradient = fit@optinfo$derivs$gradient,
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
)
write_json(out, "tests/reference/lme4/bernoulli_probit_seed25.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
