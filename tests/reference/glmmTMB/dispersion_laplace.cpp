// The Laplace approximation of a Gamma or inverse-Gaussian GLMM with one grouping
// factor and up to two correlated random terms, as glmmTMB evaluates its models (TMB's
// Laplace approximation over the random effects). Used by make_dispersion_reference.R
// for the inverse-Gaussian family, which glmmTMB 1.1.5 does not implement; the same
// template is checked against glmmTMB on a Gamma model there.
#include <TMB.hpp>

template<class Type>
Type objective_function<Type>::operator() ()
{
  DATA_VECTOR(y);
  DATA_MATRIX(X);
  DATA_MATRIX(Z);          // raw random-term columns (k = 1 or 2)
  DATA_IVECTOR(group);     // 0-based group of each row
  DATA_INTEGER(family);    // 0 Gamma, 1 inverse Gaussian
  DATA_INTEGER(link);      // 0 log, 1 inverse (1/mu), 2 inverse square (1/mu^2)
  PARAMETER_VECTOR(beta);
  PARAMETER_VECTOR(log_sd);
  PARAMETER_VECTOR(atanh_rho); // empty for k = 1
  PARAMETER(log_phi);          // Var(y) = phi mu^2 (Gamma), phi mu^3 (inverse Gaussian)
  PARAMETER_MATRIX(u);         // groups x k, standard normal

  int k = Z.cols();
  vector<Type> sd = exp(log_sd);
  Type phi = exp(log_phi);
  Type nll = 0;
  for (int j = 0; j < u.rows(); j++) for (int t = 0; t < k; t++) nll -= dnorm(u(j, t), Type(0), Type(1), true);
  Type rho = atanh_rho.size() > 0 ? tanh(atanh_rho(0)) : Type(0);
  vector<Type> eta = X * beta;
  for (int i = 0; i < y.size(); i++) {
    int j = group(i);
    Type b0 = sd(0) * u(j, 0);
    eta(i) += Z(i, 0) * b0;
    if (k == 2) {
      Type b1 = sd(1) * (rho * u(j, 0) + sqrt(1 - rho * rho) * u(j, 1));
      eta(i) += Z(i, 1) * b1;
    }
    Type mu;
    if (link == 0) mu = exp(eta(i));
    else if (link == 1) mu = 1 / eta(i);
    else mu = 1 / sqrt(eta(i));
    if (family == 0) {
      Type shape = 1 / phi;
      nll -= dgamma(y(i), shape, mu / shape, true);
    } else {
      nll -= -0.5 * log(2 * M_PI * phi * pow(y(i), 3)) - pow(y(i) - mu, 2) / (2 * phi * mu * mu * y(i));
    }
  }
  ADREPORT(phi);
  return nll;
}
