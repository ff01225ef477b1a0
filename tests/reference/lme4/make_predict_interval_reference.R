# Standard errors of predictions of lmer and glmer fits, computed from lme4's
# own pieces, for the prediction intervals of MixedFit.predict.
# Run from the repository root: Rscript tests/reference/lme4/make_predict_interval_reference.R
#
# lme4 1.1-31 (installed here) has no predict(se.fit = TRUE); from 1.1-35 it
# computes the standard error of a conditional prediction x'b + z'u from the
# joint covariance of (b, beta) given theta, vcov(fit, full = TRUE): sigma^2
# times the inverse of the penalised least-squares system, with the random
# effects mapped through Lambda. This script computes that quantity, in the
# form
#   Var = (x - D'z)' V (x - D'z) + z' C z,
#   C = sigma^2 Lambda (Lambda'Z'WZ Lambda + I)^-1 Lambda'   (condVar, all levels),
#   D = Lambda (Lambda'Z'WZ Lambda + I)^-1 Lambda'Z'W X     (d u-hat / d beta, negated),
#   V = vcov(fit),
# and checks, for the lmer fit, that it equals the block of the inverse of
# the whole system (the formula of lme4's vcov_full) and that the diagonal
# blocks of C are lme4's condVar. For glmer, W are the PIRLS working weights
# at the fit and V is vcov(fit) (from the Hessian, lme4's default), where
# lme4's se.fit would use the R_X block of the PIRLS system.
# Unseen levels get z = 0 (allow.new.levels = TRUE): their conditional mode
# is 0 and contributes no estimation error.
# Prediction variances (Gaussian only): add sigma^2, and for an unseen level
# (or a population prediction, re.form = NA) the new group's z' Sigma z.
suppressMessages({library(lme4); library(jsonlite); library(Matrix)})

# Rows of the random-effects matrix for newdata: z for seen levels, 0 otherwise.
new_z <- function(fit, newdata, group, terms) {
  levels_fit <- levels(fit@flist[[group]])
  q <- length(terms)
  z <- matrix(0, nrow(newdata), length(levels_fit) * q)
  covariates <- cbind(1, as.matrix(newdata[, setdiff(terms, "(Intercept)"), drop = FALSE]))
  for (i in seq_len(nrow(newdata))) {
    k <- match(as.character(newdata[[group]][i]), levels_fit)
    if (!is.na(k)) z[i, (k - 1) * q + seq_len(q)] <- covariates[i, ]
  }
  z
}

pieces <- function(fit, weights) {
  X <- getME(fit, "X")
  Z <- as.matrix(getME(fit, "Z"))
  Lambda <- as.matrix(getME(fit, "Lambda"))
  ZL <- Z %*% Lambda
  M <- crossprod(ZL, weights * ZL) + diag(ncol(ZL))
  Minv <- solve(M)
  list(
    C = sigma(fit)^2 * Lambda %*% Minv %*% t(Lambda),
    D = Lambda %*% Minv %*% crossprod(ZL, weights * X),
    V = as.matrix(vcov(fit)),
    X = X, ZL = ZL, Lambda = Lambda
  )
}

conditional_variance <- function(p, x, z) {
  xt <- x - z %*% p$D
  rowSums((xt %*% p$V) * xt) + rowSums((z %*% p$C) * z)
}

provenance <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                   Matrix = as.character(packageVersion("Matrix")))

# ------------------------------------------------------------------ sleepstudy
ss <- read.csv("hiermodels/datasets/data/sleepstudy.csv", colClasses = c(Subject = "factor"))
fit <- lmer(Reaction ~ Days + (Days | Subject), data = ss)
new <- expand.grid(Days = c(0, 4.5, 9), Subject = c("308", "372", "new"),
                   stringsAsFactors = FALSE)
x <- cbind(1, new$Days)
z <- new_z(fit, new, "Subject", c("(Intercept)", "Days"))
p <- pieces(fit, rep(1, nrow(ss)))

# the same numbers from the inverse of the whole system (lme4's vcov_full)
A <- rbind(cbind(crossprod(p$ZL) + diag(ncol(p$ZL)), crossprod(p$ZL, p$X)),
           cbind(crossprod(p$X, p$ZL), crossprod(p$X)))
Tmap <- as.matrix(bdiag(p$Lambda, diag(ncol(p$X))))
full <- sigma(fit)^2 * Tmap %*% solve(A) %*% t(Tmap)
zx <- cbind(z, x)
stopifnot(isTRUE(all.equal(conditional_variance(p, x, z), rowSums((zx %*% full) * zx),
                           tolerance = 1e-10)))
stopifnot(isTRUE(all.equal(unname(full[-(1:ncol(z)), -(1:ncol(z))]), unname(p$V),
                           tolerance = 1e-8)))
cv <- attr(ranef(fit, condVar = TRUE)$Subject, "postVar")
stopifnot(isTRUE(all.equal(unname(p$C[1:2, 1:2]), unname(cv[, , 1]), tolerance = 1e-8)))

Sigma <- VarCorr(fit)$Subject
unseen <- rowSums(z != 0) == 0
new_group <- rowSums((x %*% Sigma) * x)
var_conf <- conditional_variance(p, x, z)
var_pop <- rowSums((x %*% p$V) * x)
out <- list(
  id = "sleepstudy_slope_reml_predict",
  call = paste(
    "lmer(Reaction ~ Days + (Days | Subject), data = ss);",
    "predict(fit, new, allow.new.levels = TRUE) and predict(fit, new, re.form = NA);",
    "variances as in the comments of make_predict_interval_reference.R"
  ),
  newdata = new,
  sigma = sigma(fit),
  conditional = list(
    estimate = unname(predict(fit, new, allow.new.levels = TRUE)),
    se_confidence = sqrt(var_conf),
    se_prediction = sqrt(var_conf + sigma(fit)^2 + ifelse(unseen, new_group, 0))
  ),
  population = list(
    estimate = unname(predict(fit, new, re.form = NA)),
    se_confidence = sqrt(var_pop),
    se_prediction = sqrt(var_pop + sigma(fit)^2 + new_group)
  ),
  provenance = provenance
)
write_json(out, "tests/reference/lme4/sleepstudy_slope_reml_predict.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)

# ------------------------------------------------------------------------ cbpp
cbpp <- read.csv("hiermodels/datasets/data/cbpp.csv",
                 colClasses = c(herd = "factor", period = "factor"))
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
            family = binomial)
newc <- expand.grid(period = c("1", "4"), herd = c("1", "7", "new"), stringsAsFactors = FALSE)
newc$period <- factor(newc$period, levels = levels(cbpp$period))
xc <- model.matrix(~ period, newc)
zc <- new_z(gm, newc, "herd", "(Intercept)")
pc <- pieces(gm, weights(gm, type = "working"))
cvc <- attr(ranef(gm, condVar = TRUE)$herd, "postVar")
stopifnot(isTRUE(all.equal(unname(diag(pc$C)), unname(cvc[1, 1, ]), tolerance = 1e-6)))
outc <- list(
  id = "cbpp_binomial_laplace_predict",
  call = paste(
    "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,",
    "family = binomial); predict(gm, new, allow.new.levels = TRUE) and",
    "predict(gm, new, re.form = NA), link scale; standard errors as in the comments",
    "of make_predict_interval_reference.R"
  ),
  newdata = newc,
  conditional = list(
    estimate = unname(predict(gm, newc, allow.new.levels = TRUE)),
    se_confidence = sqrt(conditional_variance(pc, xc, zc))
  ),
  population = list(
    estimate = unname(predict(gm, newc, re.form = NA)),
    se_confidence = sqrt(rowSums((xc %*% pc$V) * xc))
  ),
  provenance = provenance
)
write_json(outc, "tests/reference/lme4/cbpp_binomial_laplace_predict.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
