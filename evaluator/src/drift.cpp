// PSI and Kolmogorov-Smirnov on exact multisets (see drift.h for the definitions).
#include "conflux/evaluator/drift.h"

#include "conflux/core/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace conflux::evaluator {
namespace {
int64_t total(const Multiset& m) {
  int64_t n = 0;
  for (const auto& [v, c] : m) n += c;
  return n;
}
}  // namespace

std::vector<double> quantile_edges(const Multiset& reference, int bins) {
  const int64_t n = total(reference);
  if (n == 0) CONFLUX_THROW(DataError, "quantile edges need a non-empty reference sample");
  std::vector<double> edges;
  for (int k = 1; k < bins; ++k) {
    // 1-based rank ceil(k n / bins) of the sorted sample (inverted CDF).
    const int64_t rank = (k * n + bins - 1) / bins;
    int64_t seen = 0;
    for (const auto& [v, c] : reference) {
      seen += c;
      if (seen >= rank) {
        if (edges.empty() || edges.back() != v) edges.push_back(v);
        break;
      }
    }
  }
  return edges;
}

std::vector<int64_t> bin_counts(const Multiset& sample, const std::vector<double>& edges) {
  std::vector<int64_t> counts(edges.size() + 1, 0);
  for (const auto& [v, c] : sample) {
    // number of edges strictly below v (numpy.searchsorted side='left')
    const auto bin = std::lower_bound(edges.begin(), edges.end(), v) - edges.begin();
    counts[static_cast<size_t>(bin)] += c;
  }
  return counts;
}

double psi(const std::vector<int64_t>& ref, const std::vector<int64_t>& cur, double epsilon) {
  CONFLUX_CHECK(ref.size() == cur.size(), "psi: {} vs {} bins", ref.size(), cur.size());
  int64_t nr = 0, nc = 0;
  for (auto c : ref) nr += c;
  for (auto c : cur) nc += c;
  if (nr == 0 || nc == 0) CONFLUX_THROW(DataError, "PSI needs non-empty reference and current samples");
  double sum = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double pr = static_cast<double>(ref[i]) / static_cast<double>(nr);
    double pc = static_cast<double>(cur[i]) / static_cast<double>(nc);
    if (pr == 0.0) pr = epsilon;
    if (pc == 0.0) pc = epsilon;
    sum += (pc - pr) * std::log(pc / pr);
  }
  return sum;
}

double ks_statistic(const Multiset& a, const Multiset& b) {
  const int64_t na = total(a), nb = total(b);
  if (na == 0 || nb == 0) CONFLUX_THROW(DataError, "the KS statistic needs two non-empty samples");
  // Walk the union of values in order; cumulative counts give both CDFs right after each value.
  // D = max |ca/na - cb/nb| = max |ca nb - cb na| / (na nb), kept as an exact integer numerator
  // and reported as h / lcm(na, nb) rounded once (what scipy's exact mode returns).
  auto ia = a.begin(), ib = b.begin();
  int64_t ca = 0, cb = 0;
  __int128 best = 0;
  while (ia != a.end() || ib != b.end()) {
    double v;
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) v = ia->first;
    else v = ib->first;
    while (ia != a.end() && ia->first == v) ca += (ia++)->second;
    while (ib != b.end() && ib->first == v) cb += (ib++)->second;
    __int128 diff = static_cast<__int128>(ca) * nb - static_cast<__int128>(cb) * na;
    if (diff < 0) diff = -diff;
    if (diff > best) best = diff;
  }
  const int64_t g = std::gcd(na, nb);
  const __int128 h = best / g;                               // exact: g divides both terms
  const __int128 lcm = static_cast<__int128>(na / g) * nb;
  return static_cast<double>(h) / static_cast<double>(lcm);
}

std::string psi_level(double v) {
  if (v < kPsiModerate) return "none";
  if (v < kPsiSignificant) return "moderate";
  return "significant";
}

std::map<std::string, std::vector<double>> token_features(
    const std::vector<std::vector<int64_t>>& sequences) {
  std::map<std::string, std::vector<double>> f;
  auto& ids = f["token_id"];
  auto& lengths = f["length"];
  for (const auto& seq : sequences) {
    lengths.push_back(static_cast<double>(seq.size()));
    for (int64_t id : seq) ids.push_back(static_cast<double>(id));
  }
  return f;
}

FeatureDrift feature_drift(const std::string& name, const Multiset& reference,
                           const Multiset& current, bool categorical) {
  FeatureDrift f;
  f.name = name;
  f.categorical = categorical;
  f.reference_rows = total(reference);
  f.current_rows = total(current);
  if (f.reference_rows == 0 || f.current_rows == 0)
    CONFLUX_THROW(DataError, "feature '{}': drift needs rows in both samples ({} reference, {} current)",
                  name, f.reference_rows, f.current_rows);
  if (categorical) {
    Multiset all = reference;
    for (const auto& [v, c] : current) all[v] += 0;
    for (const auto& [v, c] : all) {
      f.categories.push_back(v);
      auto r = reference.find(v);
      auto k = current.find(v);
      f.reference_counts.push_back(r == reference.end() ? 0 : r->second);
      f.current_counts.push_back(k == current.end() ? 0 : k->second);
    }
  } else {
    f.edges = quantile_edges(reference);
    f.reference_counts = bin_counts(reference, f.edges);
    f.current_counts = bin_counts(current, f.edges);
  }
  f.psi = psi(f.reference_counts, f.current_counts);
  f.ks = ks_statistic(reference, current);
  f.level = psi_level(f.psi);
  return f;
}

}  // namespace conflux::evaluator
