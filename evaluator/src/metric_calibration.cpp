// Metric "calibration": temperature scaling. Every row is kept (Stats records "rows", keyed by
// example id: [target, z_0 .. z_{C-1}]), because fitting T needs the logits themselves. Rows with
// id % fit_every == 0 form the fit set, the others the evaluation set (fit_every = 1: both are
// all rows). finalize() fits T on the fit set (calibration.h) and reports mean NLL and ECE on the
// evaluation set before (T = 1) and after (T = fitted), with both reliability diagrams.
// Records are visited in id order, so the result is independent of batching.
// Memory: O(rows x classes) doubles; give it a held-out slice, not a whole corpus.
#include "conflux/evaluator/calibration.h"
#include "factories.h"
#include "options.h"

#include <cstdio>

namespace conflux::evaluator::detail {

nlohmann::json reliability_json(const std::vector<int64_t>& count, const std::vector<int64_t>& correct,
                                const std::vector<ExactSum>& confidence, double* ece_out);

namespace {

struct SetScores {
  double nll = 0.0;
  double ece = 0.0;
  double accuracy = 0.0;
  nlohmann::json bins;
};

SetScores score_set(const std::vector<const std::vector<double>*>& rows, double temperature) {
  std::vector<int64_t> count(kEceBins, 0), correct(kEceBins, 0);
  std::vector<ExactSum> conf(kEceBins);
  ExactSum nll;
  int64_t right = 0;
  for (const auto* rec : rows) {
    const auto target = static_cast<int64_t>((*rec)[0]);
    const RowScore rs =
        score_row(rec->data() + 1, static_cast<int64_t>(rec->size()) - 1, target, temperature);
    const int b = ece_bin(rs.confidence);
    ++count[b];
    correct[b] += (rs.predicted == target);
    right += (rs.predicted == target);
    conf[b] += rs.confidence;
    nll += rs.nll;
  }
  SetScores s;
  s.bins = reliability_json(count, correct, conf, &s.ece);
  const double n = static_cast<double>(rows.size());
  s.nll = rows.empty() ? std::nan("") : nll.value() / n;
  s.accuracy = rows.empty() ? std::nan("") : static_cast<double>(right) / n;
  return s;
}

class Calibration final : public Metric {
 public:
  InputKind inputs() const override { return InputKind::Tokens; }
  Calibration(nlohmann::json options, int64_t fit_every)
      : Metric("calibration", std::move(options)), fit_every_(fit_every) {}

  Stats partial(const Batch& batch) const override {
    batch.validate();
    Stats s = empty();
    auto& rows = s.records["rows"];
    const auto& L = batch.logits;
    for (int64_t r = 0; r < L.rows; ++r) {
      const int64_t t = batch.targets[static_cast<size_t>(r)];
      if (t == batch.ignore_index) continue;
      score_row(L.row(r), L.classes, t);  // validates the target and the scores
      std::vector<double> rec;
      rec.reserve(static_cast<size_t>(L.classes) + 1);
      rec.push_back(static_cast<double>(t));
      for (int64_t j = 0; j < L.classes; ++j) rec.push_back(static_cast<double>(L.row(r)[j]));
      const int64_t id = batch.example_id(static_cast<size_t>(r));
      if (!rows.emplace(id, std::move(rec)).second)
        CONFLUX_THROW(DataError, "calibration: example id {} appears twice in one batch", id);
    }
    return s;
  }

  Result finalize(const Stats& stats) const override {
    check_stats(stats);
    std::vector<const std::vector<double>*> fit, eval;
    if (auto it = stats.records.find("rows"); it != stats.records.end()) {
      for (const auto& [id, rec] : it->second) {
        const bool in_fit = fit_every_ == 1 || id % fit_every_ == 0;
        if (in_fit) fit.push_back(&rec);
        if (fit_every_ == 1 || !in_fit) eval.push_back(&rec);
      }
    }
    if (fit.empty() || eval.empty())
      CONFLUX_THROW(DataError, "calibration: needs rows in both the fit set ({}) and the evaluation "
                    "set ({}); fit_every = {}", fit.size(), eval.size(), fit_every_);
    const TemperatureFit tf = fit_temperature(fit);
    const SetScores before = score_set(eval, 1.0);
    const SetScores after = score_set(eval, tf.temperature);
    Result r;
    r.metric = name();
    r.primary = "temperature";
    r.value = tf.temperature;
    r.detail = {{"temperature", tf.temperature}, {"iterations", tf.iterations},
                {"gradient_at_fit", tf.gradient},  {"fit_rows", fit.size()},
                {"eval_rows", eval.size()},        {"nll_before", number(before.nll)},
                {"nll_after", number(after.nll)},  {"ece_before", number(before.ece)},
                {"ece_after", number(after.ece)},  {"accuracy", number(before.accuracy)},
                {"bins_before", before.bins},      {"bins_after", after.bins}};
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "temperature = %.4f NLL %.4f -> %.4f ECE %.4f -> %.4f (fit rows = %zu, eval rows = %zu)",
                  tf.temperature, before.nll, after.nll, before.ece, after.ece, fit.size(), eval.size());
    r.line = buf;
    return r;
  }

 private:
  int64_t fit_every_;
};

}  // namespace

std::unique_ptr<Metric> make_calibration(const nlohmann::json& options) {
  reject_unknown("calibration", options, {"fit_every"});
  nlohmann::json norm = nlohmann::json::object();
  const auto k = option<int64_t>("calibration", options, "fit_every", 2, norm);
  if (k < 1) CONFLUX_THROW(ConfigError, "metric 'calibration': fit_every must be >= 1, got {}", k);
  return std::make_unique<Calibration>(norm, k);
}

}  // namespace conflux::evaluator::detail
