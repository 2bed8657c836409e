// Metric "distinct": distinct-n of generated text. For each order n in `orders` (default [1, 2]):
// distinct-n = |set of n-grams| / (number of n-grams), over the whole corpus of hypotheses, with
// tokens from Python's str.split(). Stats: string multisets "ngrams_<n>" and counts "total_<n>".
#include "conflux/evaluator/text_metrics.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {
namespace {

class Distinct final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Text; }
  Distinct(nlohmann::json options, std::vector<int> orders)
      : Metric("distinct", std::move(options)), orders_(std::move(orders)) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    Stats s = empty();
    for (int n : orders_) {
      auto& set = s.strings["ngrams_" + std::to_string(n)];
      auto& total = s.counts_of("total_" + std::to_string(n), 1)[0];
      for (const auto& h : batch.hypotheses) {
        for (auto& g : word_ngrams(h, n)) {
          ++set[g];
          ++total;
        }
      }
    }
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    Result r;
    r.metric = name();
    r.detail = nlohmann::json::object();
    for (int n : orders_) {
      const std::string key = std::to_string(n);
      const int64_t total = stats.count("total_" + key);
      auto it = stats.strings.find("ngrams_" + key);
      const int64_t unique = it == stats.strings.end() ? 0 : static_cast<int64_t>(it->second.size());
      const double d = total ? static_cast<double>(unique) / static_cast<double>(total) : std::nan("");
      r.detail["distinct_" + key] = number(d);
      r.detail["unique_" + key] = unique;
      r.detail["total_" + key] = total;
      char buf[96];
      std::snprintf(buf, sizeof buf, "%sdistinct-%d = %.4f", r.line.empty() ? "" : " ", n, d);
      r.line += buf;
      if (r.primary.empty()) {
        r.primary = "distinct_" + key;
        r.value = d;
      }
    }
    return r;
  }

 private:
  std::vector<int> orders_;
};

}  // namespace

std::unique_ptr<Metric> make_distinct(const nlohmann::json& options) {
  reject_unknown("distinct", options, {"orders"});
  nlohmann::json norm = nlohmann::json::object();
  auto orders = option<std::vector<int>>("distinct", options, "orders", {1, 2}, norm);
  if (orders.empty()) CONFLUX_THROW(ConfigError, "metric 'distinct': option 'orders' is empty");
  for (int n : orders)
    if (n < 1 || n > 16) CONFLUX_THROW(ConfigError, "metric 'distinct': order {} not in 1..16", n);
  return std::make_unique<Distinct>(norm, orders);
}

}  // namespace conflux::evaluator::detail
