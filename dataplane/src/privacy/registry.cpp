// The one list of DP mechanisms (add a mechanism: one file plus one line here), clipping
// helpers and the privacy ledger.
#include "conflux/core/error.h"
#include "conflux/core/privacy.h"
#include "conflux/dataplane/privacy_ops.h"
#include "fast_random.h"

#include <algorithm>

#include <cmath>
#include <ctime>

namespace conflux::dataplane {

const DpMechanism& laplace_mechanism();
const DpMechanism& gaussian_mechanism();
const DpMechanism& randomized_response_mechanism();

const std::vector<const DpMechanism*>& dp_registry() {
  static const std::vector<const DpMechanism*> r = {&laplace_mechanism(), &gaussian_mechanism(),
                                                    &randomized_response_mechanism()};
  return r;
}

const DpMechanism* find_dp(const std::string& name) {
  for (auto* m : dp_registry())
    if (name == m->name()) return m;
  return nullptr;
}

void add_gaussian_noise(float* x, int64_t n, double sigma, RandomSource& rng) {
  // Blocks of up to kBlock elements: 64 random bits per Box-Muller pair (both outputs used; an
  // odd tail uses the cosine of one more pair), transformed by the vectorised float kernel.
  constexpr int64_t kBlock = 1024;  // even: blocks consume consecutive words of the stream
  uint64_t bits[kBlock / 2];
  for (int64_t i = 0; i < n; i += kBlock) {
    const int64_t m = std::min(kBlock, n - i);
    fill_u64(rng, bits, static_cast<size_t>((m + 1) / 2));
    add_normal(x + i, static_cast<size_t>(m), bits, static_cast<float>(sigma));
  }
}

double clip_l1(float* x, int64_t dim, double bound) {
  double n = 0;
  for (int64_t i = 0; i < dim; ++i) n += std::fabs(static_cast<double>(x[i]));
  double f = n > bound ? bound / n : 1.0;
  if (f < 1.0)
    for (int64_t i = 0; i < dim; ++i) x[i] = static_cast<float>(x[i] * f);
  return f;
}

double clip_l2(float* x, int64_t dim, double bound) {
  // The same arithmetic as clip_l2_rows (fast_random.h): fixed-order vectorised sum of squares.
  const double n = std::sqrt(sum_squares(x, static_cast<size_t>(dim)));
  double f = n > bound ? bound / n : 1.0;
  if (f < 1.0)
    for (int64_t i = 0; i < dim; ++i) x[i] = static_cast<float>(x[i] * f);
  return f;
}

nlohmann::json ledger_entry(const DpFieldConfig& cfg, const Calibration& cal, bool secure) {
  nlohmann::json e = {{"field", cfg.field},
                      {"mechanism", cfg.mechanism},
                      {"epsilon", cfg.epsilon},
                      {"noise", secure ? "secure" : "seeded: not private"},
                      {"time", static_cast<int64_t>(std::time(nullptr))}};
  if (cfg.mechanism == "randomized_response") {
    e["delta"] = 0.0;
    e["classes"] = cal.classes;
    e["keep_probability"] = cal.keep_probability;
  } else {
    e["delta"] = cfg.mechanism == "gaussian" ? cfg.delta : 0.0;
    e["clip"] = cfg.clip;
    e["clip_norm"] = cfg.mechanism == "gaussian" ? "L2" : "L1";
    e["sensitivity"] = cal.sensitivity;
    if (cfg.mechanism == "gaussian") {
      e["calibration"] = cfg.calibration;
      e["sigma"] = cal.scale;
      e["noise_multiplier"] = cal.scale / cal.sensitivity;
    } else {
      e["scale"] = cal.scale;
    }
  }
  return e;
}

nlohmann::json compose_ledger(const nlohmann::json& parent, const std::vector<nlohmann::json>& entries) {
  nlohmann::json all = nlohmann::json::array();
  if (parent.is_object() && parent.contains("entries"))
    for (auto& e : parent["entries"]) all.push_back(e);
  for (auto& e : entries) all.push_back(e);
  nlohmann::json out = {{"entries", all}};
  if (all.empty()) return out;
  std::vector<privacy::EpsDelta> basic;
  std::vector<double> zs;
  double gauss_delta = 0, other_eps = 0, other_delta = 0;
  bool priv = true;
  for (auto& e : all) {
    basic.push_back({e["epsilon"].get<double>(), e["delta"].get<double>()});
    if (e.value("noise", "") != "secure") priv = false;
    if (e["mechanism"] == "gaussian") {
      zs.push_back(e["noise_multiplier"].get<double>());
      gauss_delta += e["delta"].get<double>();
    } else {
      other_eps += e["epsilon"].get<double>();
      other_delta += e["delta"].get<double>();
    }
  }
  auto b = privacy::compose_basic(basic);
  out["total"] = {{"basic", {{"epsilon", b.epsilon}, {"delta", b.delta}}}, {"private", priv}};
  if (zs.size() >= 2) {
    double eps_rdp;
    bool same = true;
    for (double z : zs) same = same && z == zs[0];
    if (same) {
      eps_rdp = privacy::compose_gaussian_rdp(zs[0], static_cast<int64_t>(zs.size()), gauss_delta).epsilon;
    } else {
      auto orders = privacy::default_rdp_orders();
      std::vector<double> rdp(orders.size(), 0.0);
      for (size_t i = 0; i < orders.size(); ++i)
        for (double z : zs) rdp[i] += orders[i] / (2 * z * z);
      eps_rdp = privacy::rdp_to_epsilon(orders, rdp, gauss_delta).epsilon;
    }
    // Never report RDP as worse than basic composition of the same releases.
    double gauss_basic = b.epsilon - other_eps;
    out["total"]["gaussian_rdp"] = {{"releases", zs.size()},
                                    {"epsilon", std::min(eps_rdp, gauss_basic)},
                                    {"delta", gauss_delta}};
    out["total"]["tightest"] = {{"epsilon", other_eps + std::min(eps_rdp, gauss_basic)},
                                {"delta", other_delta + gauss_delta}};
  }
  return out;
}

}  // namespace conflux::dataplane
