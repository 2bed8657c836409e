// `conflux privacy gaussian|laplace|dpsgd|dpfedavg`: noise calibration, DP-SGD and DP-FedAvg
// accounting from the command line, thin wrappers over conflux/core/privacy.h.
//
// The Gaussian verb reports both calibrations; the classic one only exists for epsilon < 1, so
// for larger epsilon it is reported as not applicable (JSON null) unless the user asked for the
// classic calibration alone, which is then refused with the library's error (exit code 1).
// JSON numbers carry 17 significant digits so they round-trip exactly.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"

#include <fmt/format.h>

#include <cmath>
#include <string>

namespace {

namespace po = conflux::cli::po;
namespace cp = conflux::privacy;

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.17g}", v);
}

// The accountant's answers, shared by dpsgd and dpfedavg. `what` describes the setting.
void emit_epsilon(bool json, const cp::EpsilonAtOrder& r, double delta, const std::string& what) {
  const std::string eps_text = !std::isfinite(r.epsilon) ? std::string("inf (no noise: no privacy)")
                               : std::isnan(r.order)     ? fmt::format("{} (nothing released)", r.epsilon)
                                                         : fmt::format("{}", r.epsilon);
  conflux::cli::emit(json,
                     fmt::format("{{\"epsilon\": {}, \"order\": {}}}", json_number(r.epsilon), json_number(r.order)),
                     fmt::format("epsilon {} at delta {} (best Renyi order {}; {})", eps_text, delta,
                                 std::isnan(r.order) ? "none" : fmt::format("{}", r.order), what));
}

void emit_noise_multiplier(bool json, double z, const std::string& what) {
  conflux::cli::emit(json, fmt::format("{{\"noise_multiplier\": {}}}", json_number(z)),
                     fmt::format("noise multiplier for {}: {}", what, z));
}

// dpsgd and dpfedavg answer one of two questions: true for --epsilon (the noise multiplier that
// meets it), false for --noise-multiplier (the epsilon spent); both or neither is a usage error.
bool asks_for_noise(const po::variables_map& vm, const char* verb) {
  const bool have_noise = vm.count("noise-multiplier") > 0, have_eps = vm.count("epsilon") > 0;
  if (have_noise == have_eps)
    CONFLUX_THROW(UsageError, "conflux privacy {}: give exactly one of --noise-multiplier (to get epsilon) "
                  "or --epsilon (to get the noise multiplier)", verb);
  return have_eps;
}

int run_gaussian(const conflux::cli::Args& args) {
  double epsilon = 0, delta = 0, sensitivity = 0;
  std::string mechanism;
  po::options_description opts("options");
  opts.add_options()
      ("epsilon", conflux::cli::number(&epsilon)->required(), "target epsilon (> 0)")
      ("delta", conflux::cli::number(&delta)->required(), "target delta, in (0, 1)")
      ("sensitivity", conflux::cli::number(&sensitivity)->required(), "L2 sensitivity of the query (> 0)")
      ("mechanism", po::value(&mechanism)->default_value("both"),
       "calibration to report: both, classic (Dwork & Roth; epsilon < 1 only) or analytic "
       "(Balle & Wang 2018)")
      ("json", "print {\"sigma_classic\": ..., \"sigma_analytic\": ...} instead of text");
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, nullptr, vm,
                           {"privacy gaussian",
                            "--epsilon E --delta D --sensitivity S [--mechanism both|classic|analytic] [--json]",
                            "Noise standard deviation sigma for the Gaussian mechanism at (epsilon, delta): "
                            "the classic bound sqrt(2 ln(1.25/delta)) * S / epsilon (valid for epsilon < 1) "
                            "and the exact analytic calibration (the smallest sigma whose privacy profile "
                            "meets delta).",
                            "conflux privacy gaussian --epsilon 0.5 --delta 1e-5 --sensitivity 1 --json"}))
    return 0;
  if (mechanism != "both" && mechanism != "classic" && mechanism != "analytic")
    CONFLUX_THROW(UsageError, "conflux privacy gaussian: --mechanism must be both, classic or analytic (got '{}')",
                  mechanism);
  const bool json = vm.count("json") > 0;

  if (mechanism == "classic") {  // asked for explicitly: an invalid epsilon is an error
    const double classic = cp::gaussian_sigma_classic(epsilon, delta, sensitivity);
    conflux::cli::emit(json, fmt::format("{{\"sigma_classic\": {}}}", json_number(classic)),
                       fmt::format("sigma (classic, Dwork & Roth): {}", classic));
    return 0;
  }
  const double analytic = cp::gaussian_sigma_analytic(epsilon, delta, sensitivity);
  if (mechanism == "analytic") {
    conflux::cli::emit(json, fmt::format("{{\"sigma_analytic\": {}}}", json_number(analytic)),
                       fmt::format("sigma (analytic, Balle & Wang 2018): {}", analytic));
    return 0;
  }
  std::string classic_text, classic_json;
  if (epsilon < 1) {
    const double classic = cp::gaussian_sigma_classic(epsilon, delta, sensitivity);
    classic_text = fmt::format("{}", classic);
    classic_json = json_number(classic);
  } else {
    classic_text = fmt::format("not applicable: the classic calibration needs epsilon < 1 (got {}); "
                               "use the analytic sigma",
                               epsilon);
    classic_json = "null";
  }
  conflux::cli::emit(
      json,
      fmt::format("{{\"sigma_classic\": {}, \"sigma_analytic\": {}}}", classic_json, json_number(analytic)),
      fmt::format("Gaussian mechanism, epsilon {}, delta {}, L2 sensitivity {}\n"
                  "  sigma (analytic, Balle & Wang 2018): {}\n"
                  "  sigma (classic, Dwork & Roth):       {}",
                  epsilon, delta, sensitivity, analytic, classic_text));
  return 0;
}

int run_laplace(const conflux::cli::Args& args) {
  double epsilon = 0, sensitivity = 0;
  po::options_description opts("options");
  opts.add_options()
      ("epsilon", conflux::cli::number(&epsilon)->required(), "target epsilon (> 0)")
      ("sensitivity", conflux::cli::number(&sensitivity)->required(), "L1 sensitivity of the query (> 0)")
      ("json", "print {\"scale\": ...} instead of text");
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, nullptr, vm,
                           {"privacy laplace", "--epsilon E --sensitivity S [--json]",
                            "Scale b = S / epsilon of Laplace noise for epsilon-DP with L1 sensitivity S.",
                            "conflux privacy laplace --epsilon 0.1 --sensitivity 1 --json"}))
    return 0;
  const double scale = cp::laplace_scale(epsilon, sensitivity);
  conflux::cli::emit(vm.count("json") > 0, fmt::format("{{\"scale\": {}}}", json_number(scale)),
                     fmt::format("Laplace scale b: {}", scale));
  return 0;
}

int run_dpsgd(const conflux::cli::Args& args) {
  double sample_rate = 0, noise = 0, delta = 0, epsilon = 0, tolerance = 0;
  int64_t steps = 0;
  po::options_description opts("options");
  opts.add_options()
      ("sample-rate", conflux::cli::number(&sample_rate)->required(), "Poisson sampling rate q = batch / dataset, in (0, 1]")
      ("steps", conflux::cli::number(&steps, 0)->required(), "number of noisy steps (0: nothing spent, epsilon 0)")
      ("delta", conflux::cli::number(&delta)->required(), "target delta, in (0, 1)")
      ("noise-multiplier", conflux::cli::number(&noise), "noise std / clipping norm: report the epsilon spent")
      ("epsilon", conflux::cli::number(&epsilon), "target epsilon: report the smallest noise multiplier that meets it")
      ("tolerance", conflux::cli::number(&tolerance)->default_value(0.01), "epsilon tolerance of the noise search")
      ("json", "print {\"epsilon\": ..., \"order\": ...} or {\"noise_multiplier\": ...}");
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, nullptr, vm,
                           {"privacy dpsgd",
                            "--sample-rate Q --steps T --delta D (--noise-multiplier Z | --epsilon E) [--json]",
                            "Renyi-DP accounting of DP-SGD (sampled Gaussian mechanism), identical to "
                            "Opacus's RDP accountant: the (epsilon, delta) spent after T steps and the best "
                            "Renyi order, or the noise multiplier needed for a target epsilon.",
                            "conflux privacy dpsgd --sample-rate 0.04 --noise-multiplier 1.5 --steps 2250 "
                            "--delta 1e-5 --json"}))
    return 0;
  const bool json = vm.count("json") > 0;
  const bool have_eps = asks_for_noise(vm, "dpsgd");
  if (have_eps) {
    emit_noise_multiplier(json, cp::dpsgd_noise_multiplier(epsilon, delta, sample_rate, steps, tolerance),
                          fmt::format("epsilon <= {} (delta {}, q {}, {} steps)", epsilon, delta, sample_rate, steps));
    return 0;
  }
  emit_epsilon(json, cp::dpsgd_epsilon(sample_rate, noise, steps, delta), delta,
               fmt::format("q {}, noise multiplier {}, {} steps", sample_rate, noise, steps));
  return 0;
}

// `privacy dpfedavg`: the same accountant at the level of users (participants) and rounds.
int run_dpfedavg(const conflux::cli::Args& args) {
  int64_t clients = 0, population = 0, rounds = 0;
  double noise = 0, delta = 0, epsilon = 0, tolerance = 0;
  po::options_description opts("options");
  opts.add_options()
      ("clients-per-round", conflux::cli::number(&clients, 1)->required(),
       "M: participants sampled per round (expected cohort size; q = M/N)")
      ("population", conflux::cli::number(&population, 1)->required(), "N: participants that could be sampled (>= M)")
      ("rounds", conflux::cli::number(&rounds, 0)->required(), "number of noisy rounds (0: nothing spent, epsilon 0)")
      ("delta", conflux::cli::number(&delta)->required(), "target delta, in (0, 1) (user level: well below 1/N)")
      ("noise-multiplier", conflux::cli::number(&noise), "z = noise std / clipping norm S: report the epsilon spent")
      ("epsilon", conflux::cli::number(&epsilon), "target epsilon: report the smallest noise multiplier that meets it")
      ("tolerance", conflux::cli::number(&tolerance)->default_value(0.01), "epsilon tolerance of the noise search")
      ("json", "print {\"epsilon\": ..., \"order\": ...} or {\"noise_multiplier\": ...}");
  po::variables_map vm;
  if (!conflux::cli::parse(
          args, opts, nullptr, vm,
          {"privacy dpfedavg",
           "--clients-per-round M --population N --rounds R --delta D (--noise-multiplier Z | --epsilon E) [--json]",
           "User-level accounting of DP-FedAvg (McMahan et al. 2018): each round samples participants with "
           "probability q = M/N, clips each update to norm S and adds Gaussian noise z*S to the sum; R rounds "
           "are R sampled Gaussian mechanisms, accounted with Renyi DP exactly as Opacus's RDP accountant. "
           "Prints the (epsilon, delta) spent and the best Renyi order, or the noise multiplier needed for a "
           "target epsilon.",
           "conflux privacy dpfedavg --clients-per-round 100 --population 10000 --noise-multiplier 1.0 "
           "--rounds 1000 --delta 1e-5 --json"}))
    return 0;
  const bool json = vm.count("json") > 0;
  const bool have_eps = asks_for_noise(vm, "dpfedavg");
  if (clients > population)
    CONFLUX_THROW(UsageError, "conflux privacy dpfedavg: --clients-per-round ({}) must not exceed --population "
                  "({}): the sampling rate q = M/N must be in (0, 1]", clients, population);
  const double q = cp::dpfedavg_sample_rate(clients, population);
  const std::string cohort = fmt::format("q = {}/{} = {}", clients, population, q);
  if (have_eps) {
    emit_noise_multiplier(json, cp::dpfedavg_noise_multiplier(epsilon, delta, q, rounds, tolerance),
                          fmt::format("epsilon <= {} (delta {}, {}, {} rounds)", epsilon, delta, cohort, rounds));
    return 0;
  }
  emit_epsilon(json, cp::dpfedavg_epsilon(q, noise, rounds, delta), delta,
               fmt::format("{}, noise multiplier {}, {} rounds", cohort, noise, rounds));
  return 0;
}

CONFLUX_VERB("privacy gaussian", "noise sigma for the Gaussian mechanism (classic and analytic)", run_gaussian);
CONFLUX_VERB("privacy laplace", "noise scale for the Laplace mechanism", run_laplace);
CONFLUX_VERB("privacy dpsgd", "DP-SGD epsilon spent, or the noise multiplier for a target epsilon",
             run_dpsgd);
CONFLUX_VERB("privacy dpfedavg", "DP-FedAvg user-level epsilon over rounds, or the noise multiplier for a target",
             run_dpfedavg);

}  // namespace
