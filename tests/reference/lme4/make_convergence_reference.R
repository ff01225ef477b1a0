# lme4's verdict on convergence, and its estimates, for fits where a raw-gradient check
# raises false alarms: Chem97 (mlmRev; 31,022 A-level chemistry scores, the centred GCSE
# score, schools crossed with local education authorities) and 200,000 simulated rows.
# Writes chem97.csv.gz (the data, as mlmRev ships it) and convergence_*.json.
# Run from the repository root:
#   python -m tests.mle.large_data /tmp/large.csv
#   Rscript tests/reference/lme4/make_convergence_reference.R /tmp/large.csv
suppressMessages({library(lme4); library(jsonlite); library(mlmRev)})
args <- commandArgs(trailingOnly = TRUE)
dir <- "tests/reference/lme4"

record <- function(id, call, fit) {
  vc <- as.data.frame(VarCorr(fit))
  out <- list(
    id = id, call = call, method = if (isREML(fit)) "REML" else "ML",
    fixef = as.list(fixef(fit)),
    varcorr = lapply(seq_len(nrow(vc)), function(i) as.list(vc[i, ])),
    theta = unname(getME(fit, "theta")), logLik = as.numeric(logLik(fit)),
    objective = as.numeric(if (isREML(fit)) REMLcrit(fit) else deviance(fit)),
    convergence_messages = as.list(fit@optinfo$conv$lme4$messages),
    optimizer_messages = as.list(fit@optinfo$message),
    gradient = fit@optinfo$derivs$gradient,
    provenance = list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                      mlmRev = as.character(packageVersion("mlmRev")))
  )
  write_json(out, file.path(dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null")
}

data(Chem97, package = "mlmRev")
chem <- Chem97[, c("score", "gcsecnt", "school", "lea")]
gz <- gzfile(file.path(dir, "chem97.csv.gz"), "w")
write.csv(chem, gz, row.names = FALSE)
close(gz)
fit <- lmer(score ~ gcsecnt + (1 | school) + (1 | lea), data = chem, REML = TRUE)
record("convergence_chem97_reml",
       "lmer(score ~ gcsecnt + (1 | school) + (1 | lea), data = Chem97, REML = TRUE)", fit)

large <- read.csv(args[1], colClasses = c(g = "factor"))
for (reml in c(TRUE, FALSE)) {
  fit <- lmer(y ~ x + (x | g), data = large, REML = reml)
  record(paste0("convergence_large_", if (reml) "reml" else "ml"),
         paste0("lmer(y ~ x + (x | g), data = tests.mle.large_data.simulate(), REML = ",
                reml, ")"), fit)
}
