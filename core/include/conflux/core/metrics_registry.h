// Metrics for operators: counters, gauges and histograms, optionally labelled, rendered in the
// Prometheus text format (0.0.4) or OpenMetrics 1.0 for a scraper (metrics_exporter.h serves
// them over HTTP). Torch-free and dependency-free; docs/operations.md lists Conflux's metrics.
//
//   auto reg = std::make_shared<metrics::Registry>();
//   metrics::Counter& steps = reg->counter("conflux_train_steps", "optimizer steps taken");
//   metrics::Gauge& loss = reg->gauge("conflux_train_loss", "training loss of the last step");
//   auto& failed = reg->counter_family("conflux_worker_tasks_failed", "failed tasks", {"task", "error"});
//   steps.inc();  loss.set(2.31);  failed.labels({"evaluate", "data"}).inc();
//   std::string text = reg->render(metrics::Format::OpenMetrics);
//
// Names: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
// "__..." and, for histograms, not "le"). A counter is registered WITHOUT the "_total" suffix,
// which the renderer adds to its samples (OpenMetrics requires it; Prometheus expects it).
// Registering a name again with the same type, help, labels and buckets returns the same metric
// (components may share one); anything else is an InternalError naming the metric.
//
// Contract: the registry owns every metric; references stay valid for the registry's lifetime.
// Thread safety: updates (inc/set/observe) are lock-free atomics, cheap enough for hot paths
// (cache the reference; labels() takes a mutex and a map lookup). Registration, labels() and
// render() may be called from any thread; render() sees each value atomically (a histogram's
// buckets and count are consistent with each other; its sum may lag by in-flight observations).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace conflux::metrics {

enum class Format {
  Prometheus,   // text/plain; version=0.0.4
  OpenMetrics,  // application/openmetrics-text; version=1.0.0 (ends with "# EOF")
};
// The HTTP Content-Type of `f`, charset included.
const char* content_type(Format f);

// A monotonically increasing total (events, bytes, seconds).
class Counter {
 public:
  // `by` must be >= 0 and finite; anything else is ignored (a counter never goes down).
  void inc(double by = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (loss, tasks in flight, workers connected).
class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1.0);
  void dec(double by = 1.0) { inc(-by); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets (upper bounds, "le"), with their sum and count.
class Histogram {
 public:
  // `bounds`: finite, strictly increasing upper bounds; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);  // NaN is ignored
  const std::vector<double>& bounds() const { return bounds_; }
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// Seconds-scale buckets for durations (checkpoint writes, tasks): 1 ms .. 10 min.
std::vector<double> seconds_buckets();

enum class Type { Counter, Gauge, Histogram };

// One metric name with its label names; a child per distinct tuple of label values.
template <typename M>
class Family {
 public:
  // The child for `values` (one per label name, in order), created on first use. A wrong
  // number of values is an InternalError naming the metric.
  M& labels(const std::vector<std::string>& values);
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class Registry;
  Family(std::string name, std::vector<std::string> label_names, std::vector<double> bounds)
      : name_(std::move(name)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}
  std::string name_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;  // sorted: stable output
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(const std::string& name, const std::string& help);
  Gauge& gauge(const std::string& name, const std::string& help);
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds);

  Family<Counter>& counter_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  Family<Gauge>& gauge_family(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names);
  Family<Histogram>& histogram_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names, std::vector<double> bounds);

  // Every metric in registration order, children sorted by label values; metrics without a
  // child yet print only their # HELP / # TYPE lines. OpenMetrics ends with "# EOF\n".
  std::string render(Format format) const;

 private:
  struct Entry;
  Entry& find_or_add(const std::string& name, const std::string& help, Type type,
                     const std::vector<std::string>& labels, const std::vector<double>& bounds);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Escaping of the text formats (exposed for tests): label values escape \ " and newline; help
// text escapes \ and newline (and " in OpenMetrics). Numbers: shortest round-trip form, +Inf,
// -Inf, NaN.
std::string escape_label_value(const std::string& v);
std::string escape_help(const std::string& v, Format format);
std::string format_value(double v);

}  // namespace conflux::metrics
