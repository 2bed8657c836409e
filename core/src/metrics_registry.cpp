// Counters, gauges, histograms and their text rendering (see metrics_registry.h).
//
// Format notes (the two differ only in metadata): Prometheus 0.0.4 names a counter's # HELP and
// # TYPE lines with the sample name (`x_total`); OpenMetrics names the family (`x`), escapes "
// in help text and ends the exposition with "# EOF". Samples are the same in both.
#include "conflux/core/metrics_registry.h"

#include "conflux/core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace conflux::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double by) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + by, std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(const std::string& n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(const std::string& n) {
  if (n.empty() || n.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* type_name(Type t) {
  switch (t) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "?";
}

// {a="x",b="y"} (with `extra` appended, e.g. le="0.5"), or "" without labels.
std::string label_text(const std::vector<std::string>& names, const std::vector<std::string>& values,
                       const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra.empty()) out += (out.empty() ? "{" : ",") + extra;
  if (!out.empty()) out += "}";
  return out;
}

template <typename M>
std::unique_ptr<M> make_child(const std::vector<double>&) {
  return std::make_unique<M>();
}
template <>
std::unique_ptr<Histogram> make_child<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

}  // namespace

const char* content_type(Format f) {
  return f == Format::OpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                  : "text/plain; version=0.0.4; charset=utf-8";
}

void Counter::inc(double by) {
  if (!(by >= 0) || std::isinf(by)) return;  // also refuses NaN
  atomic_add(value_, by);
}

void Gauge::inc(double by) { atomic_add(value_, by); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    CONFLUX_CHECK(std::isfinite(bounds_[i]), "histogram bound {} is not finite", bounds_[i]);
    CONFLUX_CHECK(i == 0 || bounds_[i] > bounds_[i - 1], "histogram bounds must increase ({} after {})",
                  bounds_[i], bounds_[i - 1]);
  }
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // The first bound >= v ("le": less than or equal); past the last, the +Inf bucket.
  const size_t b = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[b].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  uint64_t run = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    run += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(run);
  }
  s.count = run;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> seconds_buckets() {
  return {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

template <typename M>
M& Family<M>::labels(const std::vector<std::string>& values) {
  CONFLUX_CHECK(values.size() == label_names_.size(), "metric {} has {} label(s), {} value(s) given",
                name_, label_names_.size(), values.size());
  std::lock_guard<std::mutex> lock(mu_);
  auto& child = children_[values];
  if (!child) child = make_child<M>(bounds_);
  return *child;
}
template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Entry {
  std::string name, help;
  Type type = Type::Counter;
  std::vector<std::string> labels;
  std::vector<double> bounds;
  std::unique_ptr<Family<Counter>> counters;
  std::unique_ptr<Family<Gauge>> gauges;
  std::unique_ptr<Family<Histogram>> histograms;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::find_or_add(const std::string& name, const std::string& help, Type type,
                                       const std::vector<std::string>& labels,
                                       const std::vector<double>& bounds) {
  if (!valid_metric_name(name))
    CONFLUX_THROW(InternalError, "metric name '{}' is not a valid Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)", name);
  if (type == Type::Counter && ends_with(name, "_total"))
    CONFLUX_THROW(InternalError, "counter '{}': register counters without the _total suffix (the "
                  "exposition adds it)", name);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!valid_label_name(labels[i]))
      CONFLUX_THROW(InternalError, "metric {}: label name '{}' is not valid ([a-zA-Z_][a-zA-Z0-9_]*, not __*)",
                    name, labels[i]);
    if (type == Type::Histogram && labels[i] == "le")
      CONFLUX_THROW(InternalError, "histogram {}: the label name 'le' is reserved", name);
    if (std::find(labels.begin(), labels.begin() + static_cast<std::ptrdiff_t>(i), labels[i]) !=
        labels.begin() + static_cast<std::ptrdiff_t>(i))
      CONFLUX_THROW(InternalError, "metric {}: label '{}' given twice", name, labels[i]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : entries_) {
    if (e->name != name) continue;
    if (e->type != type || e->help != help || e->labels != labels || e->bounds != bounds)
      CONFLUX_THROW(InternalError, "metric {} is already registered as a {} with other help, labels "
                    "or buckets", name, type_name(e->type));
    return *e;
  }
  auto e = std::make_unique<Entry>();
  e->name = name;
  e->help = help;
  e->type = type;
  e->labels = labels;
  e->bounds = bounds;
  switch (type) {
    case Type::Counter: e->counters.reset(new Family<Counter>(name, labels, {})); break;
    case Type::Gauge: e->gauges.reset(new Family<Gauge>(name, labels, {})); break;
    case Type::Histogram: {
      Histogram check(bounds);  // validates the bounds before anything is registered
      e->histograms.reset(new Family<Histogram>(name, labels, bounds));
      break;
    }
  }
  entries_.push_back(std::move(e));
  return *entries_.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help) {
  return counter_family(name, help, {}).labels({});
}
Gauge& Registry::gauge(const std::string& name, const std::string& help) {
  return gauge_family(name, help, {}).labels({});
}
Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  return histogram_family(name, help, {}, std::move(bounds)).labels({});
}
Family<Counter>& Registry::counter_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  return *find_or_add(name, help, Type::Counter, label_names, {}).counters;
}
Family<Gauge>& Registry::gauge_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return *find_or_add(name, help, Type::Gauge, label_names, {}).gauges;
}
Family<Histogram>& Registry::histogram_family(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> bounds) {
  return *find_or_add(name, help, Type::Histogram, label_names, bounds).histograms;
}

std::string Registry::render(Format format) const {
  const bool om = format == Format::OpenMetrics;
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_) {
    // OpenMetrics names the counter family; the 0.0.4 format names the sample (x_total).
    const std::string meta = (e->type == Type::Counter && !om) ? e->name + "_total" : e->name;
    out += "# HELP " + meta + " " + escape_help(e->help, format) + "\n";
    out += "# TYPE " + meta + " " + type_name(e->type) + "\n";
    switch (e->type) {
      case Type::Counter: {
        std::lock_guard<std::mutex> fl(e->counters->mu_);
        for (const auto& [values, c] : e->counters->children_)
          out += e->name + "_total" + label_text(e->labels, values) + " " + format_value(c->value()) + "\n";
        break;
      }
      case Type::Gauge: {
        std::lock_guard<std::mutex> fl(e->gauges->mu_);
        for (const auto& [values, g] : e->gauges->children_)
          out += e->name + label_text(e->labels, values) + " " + format_value(g->value()) + "\n";
        break;
      }
      case Type::Histogram: {
        std::lock_guard<std::mutex> fl(e->histograms->mu_);
        for (const auto& [values, h] : e->histograms->children_) {
          const Histogram::Snapshot s = h->snapshot();
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            const std::string le =
                i < e->bounds.size() ? format_value(e->bounds[i]) : std::string("+Inf");
            out += e->name + "_bucket" + label_text(e->labels, values, "le=\"" + le + "\"") + " " +
                   std::to_string(s.cumulative[i]) + "\n";
          }
          out += e->name + "_sum" + label_text(e->labels, values) + " " + format_value(s.sum) + "\n";
          out += e->name + "_count" + label_text(e->labels, values) + " " + std::to_string(s.count) + "\n";
        }
        break;
      }
    }
  }
  if (om) out += "# EOF\n";
  return out;
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(const std::string& v, Format format) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && format == Format::OpenMetrics) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace conflux::metrics
