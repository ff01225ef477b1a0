# Kenward-Roger adjusted covariance, per-coefficient df and F tests by pbkrtest.
# Run from the repository root: Rscript tests/reference/pbkrtest/make_pbkrtest_reference.R
source("tests/reference/lmerTest/models.R")
suppressMessages(library(pbkrtest))

for (m in models) {
  if (!m$REML) next
  fit <- fit_model(m)
  p <- length(fixef(fit))
  out <- model_fields(m, fit)
  vcov_adj <- vcovAdj(fit)
  out$vcov <- unname(as.matrix(vcov(fit)))
  out$vcov_adjusted <- unname(as.matrix(vcov_adj))
  out$ddf <- vapply(seq_len(p), function(i) Lb_ddf(diag(p)[i, , drop = FALSE], vcov(fit), vcov_adj),
                    numeric(1))
  if (p > 1) {
    L <- rbind(c(0, 1, rep(0, p - 2)), c(0, rep(1, p - 1)))
    test <- KRmodcomp(fit, L)$test
    out$krmodcomp <- list(L = L, stat = test["Ftest", "stat"], ndf = test["Ftest", "ndf"],
                          ddf = test["Ftest", "ddf"], F_scaling = test["Ftest", "F.scaling"],
                          p_value = test["Ftest", "p.value"],
                          stat_unscaled = test["FtestU", "stat"])
  }
  out$provenance <- c(versions(c("lme4", "pbkrtest", "Matrix")), list(
    call = paste0(fit_call(m), "; vcovAdj(fit); Lb_ddf(diag(p)[i, , drop = FALSE], vcov(fit), ",
                  "vcovAdj(fit)); KRmodcomp(fit, L)")))
  write_reference(out, sprintf("tests/reference/pbkrtest/%s.json", m$id))
}
