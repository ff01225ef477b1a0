# lme4's time on one data set of the scale benchmark (benchmarks/bench_scale.py).
#
# Usage: Rscript benchmarks/scale_lme4.R <data set directory> <slope|crossed>
#
# Reads <data set directory>/data.csv, the CSV copy that bench_scale.py writes
# once beside the data set's Parquet files (R's arrow package is not needed),
# turns the integer group codes into factors and fits the model by REML with
# lmer's defaults:
#
#   slope:   y ~ x + (x | g)
#   crossed: y ~ x + (1 | a) + (1 | b)
#
# Prints one JSON line: the wall time of lmer() alone ("time"), of reading the
# CSV and making the factors ("read"), the process's peak resident memory in
# MB (VmHWM), the estimates (fixef, theta, sigma, the REML logLik) and whether
# lme4 reports convergence. Needs lme4, data.table and jsonlite. A timing
# tool for the benchmark only; hiermodels does not depend on R.

suppressMessages({
  library(lme4)
  library(data.table)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2 || !(args[2] %in% c("slope", "crossed"))) {
  stop("usage: Rscript scale_lme4.R <data set directory> <slope|crossed>")
}
directory <- args[1]
kind <- args[2]

read_time <- system.time({
  d <- fread(file.path(directory, "data.csv"), showProgress = FALSE)
  setDF(d)
  if (kind == "slope") {
    d$g <- factor(d$g)
    model <- y ~ x + (x | g)
  } else {
    d$a <- factor(d$a)
    d$b <- factor(d$b)
    model <- y ~ x + (1 | a) + (1 | b)
  }
})[["elapsed"]]

fit_time <- system.time(fit <- lmer(model, data = d, REML = TRUE))[["elapsed"]]

messages <- fit@optinfo$conv$lme4$messages
converged <- length(messages) == 0 && fit@optinfo$conv$opt == 0
status <- readLines("/proc/self/status")
peak_mb <- as.numeric(gsub("[^0-9]", "", grep("^VmHWM:", status, value = TRUE))) / 1024

result <- list(
  time = fit_time,
  read = read_time,
  rss = peak_mb,
  fixef = as.list(fixef(fit)),
  theta = unname(getME(fit, "theta")),
  sigma = sigma(fit),
  loglik = as.numeric(logLik(fit)),
  converged = converged,
  version = as.character(packageVersion("lme4"))
)
cat(toJSON(result, auto_unbox = TRUE, digits = NA), "\n", sep = "")
