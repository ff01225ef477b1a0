# Gamma and inverse-Gaussian GLMMs by the Laplace approximation (glmmTMB's criterion: the
# exact Laplace, with the Hessian of the joint log-density in the random effects).
#
# Gamma: glmmTMB (family = Gamma(link = "log" | "inverse")); sigma(fit) = 1/sqrt(shape),
# the coefficient of variation. Inverse Gaussian: glmmTMB 1.1.5 does not implement the
# family ("Family not implemented!"), so its fits come from dispersion_laplace.cpp, a
# TMB template with the same Laplace approximation, maximised by nlminb as glmmTMB does;
# the template is checked against glmmTMB on the Gamma models (field "template_check").
# Its dispersion is reported as sigma = sqrt(phi) with Var(y) = phi mu^3 (and for Gamma
# sqrt(phi) = 1/sqrt(shape), glmmTMB's sigma).
#
# Data: simulated here with fixed seeds and written next to the JSON files as CSV, and
# sleepstudy (Reaction, milliseconds) from hiermodels/datasets/data.
# Run from the repository root: Rscript tests/reference/glmmTMB/make_dispersion_reference.R
suppressMessages({library(glmmTMB); library(TMB); library(statmod); library(jsonlite)})
data_dir <- "hiermodels/datasets/data"
out_dir <- "tests/reference/glmmTMB"

build_dir <- tempfile("dispersion_laplace")
dir.create(build_dir)
file.copy(file.path(out_dir, "dispersion_laplace.cpp"), build_dir)
old <- setwd(build_dir)
invisible(compile("dispersion_laplace.cpp"))
dyn.load(dynlib("dispersion_laplace"))
setwd(old)

provenance <- list(R = R.version.string,
                   glmmTMB = as.character(packageVersion("glmmTMB")),
                   TMB = as.character(packageVersion("TMB")),
                   statmod = as.character(packageVersion("statmod")),
                   date = format(Sys.Date()))

simulate_data <- function(seed, family, link, n_groups, n_per, beta, sds, rho, sigma) {
  set.seed(seed)
  g <- factor(sprintf("g%02d", rep(seq_len(n_groups) - 1, each = n_per)))
  x <- rnorm(n_groups * n_per)
  u0 <- rnorm(n_groups)
  u1 <- rnorm(n_groups)
  b0 <- sds[1] * u0
  b1 <- if (length(sds) > 1) sds[2] * (rho * u0 + sqrt(1 - rho^2) * u1) else 0 * u0
  eta <- beta[1] + beta[2] * x + b0[g] + b1[g] * x
  mu <- switch(link, log = exp(eta), inverse = 1 / eta, "1/mu^2" = 1 / sqrt(eta))
  y <- if (family == "gamma") {
    rgamma(length(mu), shape = 1 / sigma^2, scale = mu * sigma^2)
  } else {
    statmod::rinvgauss(length(mu), mean = mu, dispersion = sigma^2)
  }
  data.frame(g = g, x = x, y = y)
}

tmb_varcorr <- function(fit) {
  rows <- list()
  for (grp in names(VarCorr(fit)$cond)) {
    m <- VarCorr(fit)$cond[[grp]]
    sds <- attr(m, "stddev")
    corr <- attr(m, "correlation")
    for (i in seq_along(sds)) {
      rows[[length(rows) + 1]] <- list(grp = grp, var1 = names(sds)[i], var2 = NA,
                                       sdcor = unname(sds[i]))
    }
    if (length(sds) > 1) {
      rows[[length(rows) + 1]] <- list(grp = grp, var1 = names(sds)[1],
                                       var2 = names(sds)[2], sdcor = corr[1, 2])
    }
  }
  rows
}

# The template's fit of y ~ x + (1 | g) or y ~ x + (x | g) (slope = TRUE).
template_fit <- function(data, family, link, slope, grp = "g", xname = "x", yname = "y") {
  X <- cbind(1, data[[xname]])
  Z <- if (slope) cbind(1, data[[xname]]) else matrix(1, nrow(data), 1)
  group <- as.integer(data[[grp]]) - 1L
  k <- ncol(Z)
  start_beta <- switch(link, log = c(log(mean(data[[yname]])), 0),
                       inverse = c(1 / mean(data[[yname]]), 0),
                       "1/mu^2" = c(1 / mean(data[[yname]])^2, 0))
  obj <- MakeADFun(
    data = list(y = data[[yname]], X = X, Z = Z, group = group,
                family = if (family == "gamma") 0L else 1L,
                link = match(link, c("log", "inverse", "1/mu^2")) - 1L),
    parameters = list(beta = start_beta, log_sd = rep(log(0.2), k),
                      atanh_rho = if (slope) 0 else numeric(0), log_phi = log(0.5),
                      u = matrix(0, nlevels(data[[grp]]), k)),
    random = "u", DLL = "dispersion_laplace", silent = TRUE)
  opt <- nlminb(obj$par, obj$fn, obj$gr, control = list(eval.max = 1000, iter.max = 1000))
  rep <- sdreport(obj)
  par <- opt$par
  beta <- unname(par[names(par) == "beta"])
  sds <- exp(unname(par[names(par) == "log_sd"]))
  terms <- c("(Intercept)", xname)[seq_len(k)]
  varcorr <- lapply(seq_len(k), function(i) list(grp = grp, var1 = terms[i], var2 = NA,
                                                   sdcor = sds[i]))
  if (slope) {
    varcorr[[3]] <- list(grp = grp, var1 = terms[1], var2 = terms[2],
                         sdcor = tanh(unname(par[names(par) == "atanh_rho"])))
  }
  fixed_se <- sqrt(diag(rep$cov.fixed))[names(par) == "beta"]
  list(fixef = setNames(as.list(beta), c("(Intercept)", xname)),
       fixef_se = setNames(as.list(unname(fixed_se)), c("(Intercept)", xname)),
       varcorr = varcorr,
       dispersion = sqrt(exp(unname(par[names(par) == "log_phi"]))),
       logLik = -opt$objective, df = length(par), nobs = nrow(data),
       convergence = opt$convergence, pdHess = rep$pdHess)
}

glmmtmb_fit <- function(fit, call) {
  list(call = call,
       fixef = as.list(fixef(fit)$cond),
       fixef_se = as.list(sqrt(diag(vcov(fit)$cond))),
       varcorr = tmb_varcorr(fit),
       dispersion = sigma(fit),
       logLik = as.numeric(logLik(fit)), df = attr(logLik(fit), "df"), nobs = nobs(fit),
       convergence = fit$fit$convergence, pdHess = fit$sdr$pdHess)
}

write_reference <- function(out) {
  out$provenance <- provenance
  write_json(out, file.path(out_dir, paste0(out$id, ".json")), digits = NA,
             auto_unbox = TRUE, pretty = TRUE, na = "null")
}

gamma_reference <- function(id, data, data_note, formula, link, slope, grp = "g",
                            xname = "x", yname = "y", dataset = "data") {
  # glmmTMB starts at beta = 0, where the inverse link has no mean: start it at the
  # intercept-only GLM's
  start <- if (link == "inverse") {
    sprintf(", start = list(beta = c(%.17g, 0))", 1 / mean(data[[yname]]))
  } else ""
  call <- sprintf('glmmTMB(%s, data = %s, family = Gamma(link = "%s")%s)', formula, dataset,
                  link, start)
  fit <- eval(parse(text = call), envir = list2env(setNames(list(data), dataset)))
  check <- template_fit(data, "gamma", link, slope, grp, xname, yname)
  check$call <- sprintf('template_fit(%s, "gamma", "%s", slope = %s)', dataset, link, slope)
  write_reference(list(id = id, formula = formula, family = "gamma", link = link,
                       data = data_note, glmmTMB = glmmtmb_fit(fit, call),
                       template_check = check))
}

invgauss_reference <- function(id, data, data_note, formula, link, slope, grp = "g",
                               xname = "x", yname = "y", dataset = "data") {
  fit <- template_fit(data, "inverse_gaussian", link, slope, grp, xname, yname)
  fit$call <- sprintf('template_fit(%s, "inverse_gaussian", "%s", slope = %s)',
                      dataset, link, slope)
  write_reference(list(id = id, formula = formula, family = "inverse_gaussian",
                       link = link, data = data_note, tmb_template = fit))
}

simulated <- function(id, seed, family, link, n_groups, n_per, beta, sds, rho, sigma) {
  data <- simulate_data(seed, family, link, n_groups, n_per, beta, sds, rho, sigma)
  path <- file.path(out_dir, paste0(id, ".csv"))
  write.csv(data, path, row.names = FALSE)
  note <- sprintf(paste0("%s: simulated in make_dispersion_reference.R (seed %d, beta = (%s), ",
                         "sd = (%s), rho = %s, sigma = %s)"),
                  path, seed, toString(beta), toString(sds), rho, sigma)
  list(data = read.csv(path, colClasses = c(g = "factor")), note = note)
}

sim <- simulated("gamma_log_intercept_seed1", 1, "gamma", "log", 30, 10, c(1, 0.4), 0.5, 0, 0.5)
gamma_reference("gamma_log_intercept_seed1", sim$data, sim$note, "y ~ x + (1 | g)", "log", FALSE)
sim <- simulated("gamma_log_slope_seed2", 2, "gamma", "log", 40, 15, c(0.5, -0.3),
                 c(0.4, 0.2), 0.3, 0.3)
gamma_reference("gamma_log_slope_seed2", sim$data, sim$note, "y ~ x + (x | g)", "log", TRUE)
sim <- simulated("gamma_inverse_intercept_seed3", 3, "gamma", "inverse", 30, 12, c(0.5, 0.05),
                 0.08, 0, 0.4)
gamma_reference("gamma_inverse_intercept_seed3", sim$data, sim$note, "y ~ x + (1 | g)",
                "inverse", FALSE)
sim <- simulated("invgauss_log_intercept_seed4", 4, "inverse_gaussian", "log", 30, 10,
                 c(1, 0.4), 0.5, 0, 0.4)
invgauss_reference("invgauss_log_intercept_seed4", sim$data, sim$note, "y ~ x + (1 | g)",
                   "log", FALSE)
sim <- simulated("invgauss_log_slope_seed5", 5, "inverse_gaussian", "log", 40, 15,
                 c(0.5, -0.3), c(0.4, 0.2), 0.3, 0.3)
invgauss_reference("invgauss_log_slope_seed5", sim$data, sim$note, "y ~ x + (x | g)", "log",
                   TRUE)
sim <- simulated("invgauss_canonical_intercept_seed6", 6, "inverse_gaussian", "1/mu^2", 30, 12,
                 c(0.5, 0.05), 0.08, 0, 0.3)
invgauss_reference("invgauss_canonical_intercept_seed6", sim$data, sim$note, "y ~ x + (1 | g)",
                   "1/mu^2", FALSE)

sleepstudy <- read.csv(file.path(data_dir, "sleepstudy.csv"), colClasses = c(Subject = "factor"))
note <- "hiermodels/datasets/data/sleepstudy.csv"
gamma_reference("sleepstudy_gamma_log", sleepstudy, note, "Reaction ~ Days + (Days | Subject)",
                "log", TRUE, grp = "Subject", xname = "Days", yname = "Reaction",
                dataset = "sleepstudy")
invgauss_reference("sleepstudy_invgauss_log", sleepstudy, note,
                   "Reaction ~ Days + (Days | Subject)", "log", TRUE, grp = "Subject",
                   xname = "Days", yname = "Reaction", dataset = "sleepstudy")
