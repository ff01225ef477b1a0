# The models shared by the lmerTest, pbkrtest and emmeans reference scripts.
# Sourced from the repository root by make_*_reference.R in the three folders.
suppressMessages({library(lmerTest); library(jsonlite)})

data_dir <- "hiermodels/datasets/data"
read_data <- function(name, factors) {
  cls <- setNames(rep("factor", length(factors)), factors)
  read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = cls)
}

tlc <- read_data("tlc", c("id", "treatment"))
# An unbalanced TLC: some children miss some visits (the same rule is in
# tests/reference/small_sample.py).
tlc_unbalanced_rule <- paste(
  "drop rows with (id %% 4 == 0 and week == 6) or (id %% 7 == 0 and week == 1)",
  "or (id %% 5 == 0 and week == 4 and treatment == 'succimer')"
)
tlc_id <- as.integer(as.character(tlc$id))
tlc_unbalanced <- tlc[!((tlc_id %% 4 == 0 & tlc$week == 6) | (tlc_id %% 7 == 0 & tlc$week == 1) |
                        (tlc_id %% 5 == 0 & tlc$week == 4 & tlc$treatment == "succimer")), ]

# id, dataset, subset rule, lme4 formula, hiermodels formula, REML?
models <- list(
  list(id = "sleepstudy_slope_reml", dataset = "sleepstudy", subset = NULL,
       data = read_data("sleepstudy", "Subject"),
       formula = "Reaction ~ Days + (Days | Subject)",
       formula_hm = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  list(id = "sleepstudy_slope_ml", dataset = "sleepstudy", subset = NULL,
       data = read_data("sleepstudy", "Subject"),
       formula = "Reaction ~ Days + (Days | Subject)",
       formula_hm = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  list(id = "penicillin_crossed_reml", dataset = "penicillin", subset = NULL,
       data = read_data("penicillin", c("plate", "sample")),
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       formula_hm = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = TRUE),
  list(id = "pastes_nested_reml", dataset = "pastes", subset = NULL,
       data = read_data("pastes", c("batch", "cask", "sample")),
       formula = "strength ~ 1 + (1 | batch/cask)",
       formula_hm = "strength ~ 1 + (1 | batch/cask)", REML = TRUE),
  list(id = "radon_floor_uranium_reml", dataset = "radon", subset = NULL,
       data = read_data("radon", "county"),
       formula = "log_radon ~ floor + log_uranium + (1 | county)",
       formula_hm = "log_radon ~ floor + log_uranium + (1 | county)", REML = TRUE),
  list(id = "tlc_factorial_reml", dataset = "tlc", subset = NULL, data = tlc,
       formula = "lead ~ treatment * factor(week) + (1 | id)",
       formula_hm = "lead ~ treatment * C(week) + (1 | id)", REML = TRUE),
  list(id = "tlc_unbalanced_factorial_reml", dataset = "tlc", subset = tlc_unbalanced_rule,
       data = tlc_unbalanced,
       formula = "lead ~ treatment * factor(week) + (1 | id)",
       formula_hm = "lead ~ treatment * C(week) + (1 | id)", REML = TRUE),
  list(id = "tlc_unbalanced_slope_reml", dataset = "tlc", subset = tlc_unbalanced_rule,
       data = tlc_unbalanced,
       formula = "lead ~ treatment * week + (week | id)",
       formula_hm = "lead ~ treatment * week + (week | id)", REML = TRUE),
  list(id = "dyestuff2_reml_singular", dataset = "dyestuff2", subset = NULL,
       data = read_data("dyestuff2", "Batch"),
       formula = "Yield ~ 1 + (1 | Batch)",
       formula_hm = "Yield ~ 1 + (1 | Batch)", REML = TRUE)
)

fit_model <- function(m) {
  data <- m$data
  lmer(as.formula(m$formula), data = data, REML = m$REML)
}

fit_call <- function(m) {
  sprintf("lmerTest::lmer(%s, data = %s%s, REML = %s)", m$formula, m$dataset,
          if (is.null(m$subset)) "" else " (unbalanced subset)", m$REML)
}

model_fields <- function(m, fit) {
  list(id = m$id, dataset = m$dataset, subset = if (is.null(m$subset)) NA else m$subset, formula = m$formula,
       formula_hm = m$formula_hm, method = if (m$REML) "REML" else "ML",
       nobs = nobs(fit), coef = names(fixef(fit)), fixef = unname(fixef(fit)),
       theta = unname(getME(fit, "theta")), sigma = sigma(fit), singular = isSingular(fit))
}

table_fields <- function(tab) {
  out <- lapply(as.data.frame(tab), function(col) unname(as.numeric(col)))
  out$rows <- rownames(tab)
  out
}

versions <- function(packages) {
  c(list(R = R.version.string),
    setNames(lapply(packages, function(p) as.character(packageVersion(p))), packages))
}

write_reference <- function(out, path) {
  write_json(out, path, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
}
