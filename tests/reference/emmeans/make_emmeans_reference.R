# Estimated marginal means and their pairwise differences by emmeans on lmerTest fits.
# Run from the repository root: Rscript tests/reference/emmeans/make_emmeans_reference.R
source("tests/reference/lmerTest/models.R")
suppressMessages(library(emmeans))

# model id -> list of (specs, by) asked of emmeans, with the hiermodels spellings
requests <- list(
  tlc_factorial_reml = list(
    list(specs = "treatment", by = NULL, factor_hm = "treatment", by_hm = NULL),
    list(specs = "week", by = NULL, factor_hm = "week", by_hm = NULL),
    list(specs = "treatment", by = "week", factor_hm = "treatment", by_hm = "week")),
  tlc_unbalanced_factorial_reml = list(
    list(specs = "treatment", by = NULL, factor_hm = "treatment", by_hm = NULL),
    list(specs = "week", by = NULL, factor_hm = "week", by_hm = NULL),
    list(specs = "week", by = "treatment", factor_hm = "week", by_hm = "treatment")),
  tlc_unbalanced_slope_reml = list(
    list(specs = "treatment", by = NULL, factor_hm = "treatment", by_hm = NULL))
)

frame_fields <- function(x) {
  df <- as.data.frame(x)
  lapply(df, function(col) if (is.factor(col)) as.character(col) else unname(col))
}

for (m in models) {
  if (is.null(requests[[m$id]])) next
  fit <- fit_model(m)
  out <- model_fields(m, fit)
  out$tables <- list()
  for (req in requests[[m$id]]) {
    for (method in c("satterthwaite", "kenward-roger")) {
      emm <- emmeans(fit, specs = req$specs, by = req$by, lmer.df = method)
      out$tables[[length(out$tables) + 1]] <- list(
        specs = req$specs, by = if (is.null(req$by)) NA else req$by, factor_hm = req$factor_hm,
        by_hm = if (is.null(req$by_hm)) NA else req$by_hm,
        ddf = method, means = frame_fields(emm),
        pairs = frame_fields(pairs(emm, adjust = "none")),
        pairs_tukey = frame_fields(pairs(emm)),
        pairs_tukey_ci = frame_fields(confint(pairs(emm))),
        pairs_bonferroni = frame_fields(pairs(emm, adjust = "bonferroni")),
        pairs_bonferroni_ci = frame_fields(confint(pairs(emm, adjust = "bonferroni"))),
        call = sprintf(paste("emmeans(fit, specs = '%s', by = %s, lmer.df = '%s'); pairs(emm, adjust = 'none');",
                             "pairs(emm) and confint(pairs(emm)) (Tukey); the same with adjust = 'bonferroni'"),
                       req$specs, if (is.null(req$by)) "NULL" else sprintf("'%s'", req$by), method))
    }
  }
  out$provenance <- c(versions(c("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix")),
                      list(call = fit_call(m)))
  write_reference(out, sprintf("tests/reference/emmeans/%s.json", m$id))
}
