# Satterthwaite (and Kenward-Roger) t tables, type-III F tests and contrasts by lmerTest.
# Run from the repository root: Rscript tests/reference/lmerTest/make_lmerTest_reference.R
source("tests/reference/lmerTest/models.R")

# Contrasts tested with contest(): one row (t test) and, when there are enough
# coefficients, two rows (F test).
contrast_rows <- function(p) {
  if (p == 1) return(list(matrix(1, 1, 1)))
  one <- matrix(c(1, rep(0.5, p - 1)), 1, p)
  two <- rbind(c(0, 1, rep(0, p - 2)), c(0, rep(1, p - 1)))
  list(one, two)
}

for (m in models) {
  fit <- fit_model(m)
  p <- length(fixef(fit))
  out <- model_fields(m, fit)
  out$satterthwaite <- table_fields(summary(fit)$coefficients)
  if (m$REML) out$kenward_roger <- table_fields(summary(fit, ddf = "Kenward-Roger")$coefficients)
  if (p > 1) {
    out$anova_satterthwaite <- table_fields(anova(fit, type = "III", ddf = "Satterthwaite"))
    if (m$REML) out$anova_kenward_roger <- table_fields(anova(fit, type = "III", ddf = "Kenward-Roger"))
  }
  out$contrasts <- lapply(contrast_rows(p), function(L) {
    res <- list(L = L, satterthwaite = table_fields(
      if (nrow(L) == 1) contest(fit, L, joint = FALSE) else contest(fit, L, joint = TRUE)))
    if (m$REML) res$kenward_roger <- table_fields(
      if (nrow(L) == 1) contest(fit, L, joint = FALSE, ddf = "Kenward-Roger")
      else contest(fit, L, joint = TRUE, ddf = "Kenward-Roger"))
    res
  })
  out$provenance <- c(versions(c("lme4", "lmerTest", "pbkrtest", "Matrix")), list(
    call = paste0(fit_call(m), "; summary(fit); summary(fit, ddf = 'Kenward-Roger'); ",
                  "anova(fit, type = 'III', ddf = ...); contest(fit, L, joint = nrow(L) > 1, ddf = ...)")))
  write_reference(out, sprintf("tests/reference/lmerTest/%s.json", m$id))
}
