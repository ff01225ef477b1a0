# lmerTest's Satterthwaite table of a weighted LMM: sleepstudy with the seeded precision
# weights of tests/reference/lme4/make_weights_reference.R (stored again here).
# pbkrtest 0.5-2 is not used: its get_SigmaG builds the marginal covariance with
# sigma^2 I whatever the weights (its Kenward-Roger SEs then differ from vcov(fit)),
# so it has no Kenward-Roger reference for weighted fits.
# Run from the repository root: Rscript tests/reference/lmerTest/make_weighted_reference.R
suppressMessages({library(lmerTest); library(jsonlite)})
data_dir <- "../shared/data"
if (!dir.exists(data_dir)) data_dir <- "/work/shared/data"
ss <- read.csv(file.path(data_dir, "sleepstudy.csv"))
ss$Subject <- factor(ss$Subject)
set.seed(15)
ss$w <- round(runif(nrow(ss), 0.25, 4), 3)
fit <- lmer(Reaction ~ Days + (Days | Subject), data = ss, weights = w)
coefs <- summary(fit)$coefficients
out <- list(
  dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
  weights = ss$w,
  satterthwaite = c(list(rows = rownames(coefs)),
                    lapply(split(coefs, col(coefs)), identity) |> setNames(colnames(coefs))),
  provenance = list(
    R = R.version.string, lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest")),
    call = paste0("set.seed(15); w <- round(runif(180, 0.25, 4), 3); ",
                  "summary(lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, ",
                  "weights = w))$coefficients")
  )
)
write_json(out, "tests/reference/lmerTest/sleepstudy_slope_weighted_reml.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
