# Profile-likelihood intervals of sleepstudy's variance components by lme4.
# Run from the repository root: Rscript tests/reference/lme4/make_profile_reference.R
suppressMessages({library(lme4); library(jsonlite)})
ss <- read.csv("hiermodels/datasets/data/sleepstudy.csv", colClasses = c(Subject = "factor"))
fit <- lmer(Reaction ~ Days + (Days | Subject), data = ss)
ci <- confint(fit, method = "profile", oldNames = FALSE, level = 0.95)
out <- list(
  id = "sleepstudy_slope_reml_profile",
  call = "confint(lmer(Reaction ~ Days + (Days | Subject), data = ss), method = 'profile')",
  parameters = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
  provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                    Matrix = as.character(packageVersion("Matrix")))
)
write_json(out, "tests/reference/lme4/sleepstudy_slope_reml_profile.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
