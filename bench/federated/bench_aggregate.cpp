// Aggregation throughput of the federated strategies, one thread: GB/s of client update bytes
// consumed by one round (begin_round, add every client's result, finish), against memcpy of the
// same update buffers into one model-sized buffer, measured in the same run. Updates are
// `--clients` x `--mib` MiB of float32 in `--tensors` tensors, random in [-1, 1). Each
// repetition runs every method once, interleaved (memcpy, fedavg, median, ...), and the table
// gives the median over repetitions with the spread (min-max) and the ratio to memcpy's median.
// The results are copied into fresh ClientResults before each timed round (add() takes them by
// value; robust strategies keep them), so copies are not timed; page faults of the strategy's
// own buffers are. memcpy's destination is touched once before timing (its best case).
//   bench_aggregate [--clients 16] [--mib 16] [--tensors 8] [--reps 5]
//                   [--strategies fedavg,median,trimmed_avg,krum] [--json]
// --json prints one JSON object per method instead of the table.
#include <conflux/core/rng.h>
#include <conflux/federated/strategy.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fed = conflux::federated;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  int clients = 16;
  double mib = 16;
  int tensors = 8;
  int reps = 5;
  std::vector<std::string> strategies = {"fedavg", "median", "trimmed_avg", "krum"};
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_aggregate: %s\nusage: bench_aggregate [--clients N] [--mib M] [--tensors T] [--reps R] "
               "[--strategies a,b,...] [--json]\n",
               why.c_str());
  std::exit(2);
}

Config parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--clients") c.clients = std::atoi(next().c_str());
    else if (a == "--mib") c.mib = std::atof(next().c_str());
    else if (a == "--tensors") c.tensors = std::atoi(next().c_str());
    else if (a == "--reps") c.reps = std::atoi(next().c_str());
    else if (a == "--json") c.json = true;
    else if (a == "--strategies") {
      c.strategies.clear();
      std::stringstream ss(next());
      for (std::string s; std::getline(ss, s, ',');)
        if (!s.empty()) c.strategies.push_back(s);
    } else usage("unknown argument " + a);
  }
  if (c.clients < 1 || c.tensors < 1 || c.reps < 1 || !(c.mib > 0) || c.strategies.empty())
    usage("--clients, --tensors, --reps, --mib and --strategies must be positive / non-empty");
  return c;
}

// One client's update: `tensors` tensors splitting `elements` floats, values in [-1, 1).
fed::Weights make_update(int client, size_t elements, int tensors) {
  conflux::Stream rng(20261206, "bench-aggregate", static_cast<uint64_t>(client));
  fed::Weights w;
  for (int t = 0; t < tensors; ++t) {
    const size_t b = elements * t / tensors, e = elements * (t + 1) / tensors;
    fed::NamedTensor nt{fmt::format("layer{}.weight", t), {static_cast<int64_t>(e - b)}, std::vector<float>(e - b)};
    for (float& v : nt.values) v = static_cast<float>(2 * rng.uniform() - 1);
    w.push_back(std::move(nt));
  }
  return w;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// One round of `strategy` over copies of `updates`; seconds for begin_round..finish.
double time_round(fed::Strategy& s, const fed::Weights& global, const std::vector<fed::Weights>& updates) {
  std::vector<fed::ClientResult> results;
  results.reserve(updates.size());
  for (size_t i = 0; i < updates.size(); ++i)
    results.push_back({updates[i], 100 + 10 * i, fmt::format("client {}", i)});
  const auto t0 = Clock::now();
  s.begin_round(&global);
  for (auto& r : results) s.add(std::move(r));
  const fed::Weights next = s.finish();
  const double dt = seconds_since(t0);
  if (next.size() != global.size()) std::abort();  // keeps the result alive and checked
  return dt;
}

// memcpy of every update's tensors into one model-sized destination.
double time_memcpy(std::vector<fed::Weights>& dst_holder, const std::vector<fed::Weights>& updates) {
  fed::Weights& dst = dst_holder[0];
  const auto t0 = Clock::now();
  for (const fed::Weights& u : updates)
    for (size_t k = 0; k < u.size(); ++k)
      std::memcpy(dst[k].values.data(), u[k].values.data(), u[k].values.size() * sizeof(float));
  const double dt = seconds_since(t0);
  volatile float sink = dst[0].values[0];  // the copies are observable
  (void)sink;
  return dt;
}

struct Stats {
  double median, min, max;
};

Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {med, v.front(), v.back()};
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse(argc, argv);
  const size_t elements = static_cast<size_t>(c.mib * (1 << 20) / sizeof(float));
  std::vector<fed::Weights> updates;
  for (int i = 0; i < c.clients; ++i) updates.push_back(make_update(i, elements, c.tensors));
  const fed::Weights global = make_update(-1, elements, c.tensors);
  std::vector<fed::Weights> dst{global};  // memcpy's destination, already touched
  const double update_bytes = static_cast<double>(fed::weight_bytes(updates[0])) * c.clients;

  std::vector<std::unique_ptr<fed::Strategy>> strategies;
  for (const auto& name : c.strategies) strategies.push_back(fed::make_strategy(name));

  std::map<std::string, std::vector<double>> gbps;
  for (int rep = 0; rep < c.reps; ++rep) {
    gbps["memcpy"].push_back(update_bytes / time_memcpy(dst, updates) / 1e9);
    for (auto& s : strategies) gbps[s->name()].push_back(update_bytes / time_round(*s, global, updates) / 1e9);
  }

  const Stats ceiling = stats(gbps["memcpy"]);
  std::vector<std::string> order = {"memcpy"};
  for (const auto& s : c.strategies) order.push_back(s);
  if (c.json) {
    for (const auto& m : order) {
      const Stats st = stats(gbps[m]);
      std::printf("{\"method\": \"%s\", \"clients\": %d, \"update_mib\": %g, \"tensors\": %d, \"reps\": %d, "
                  "\"gbps_median\": %.4f, \"gbps_min\": %.4f, \"gbps_max\": %.4f, \"ratio_to_memcpy\": %.4f}\n",
                  m.c_str(), c.clients, c.mib, c.tensors, c.reps, st.median, st.min, st.max,
                  st.median / ceiling.median);
    }
    return 0;
  }
  std::printf("aggregation throughput, 1 thread: %d clients x %g MiB float32 updates (%d tensors each), "
              "%.0f MB per round; %d repetitions, interleaved; load average %s; %u hardware threads\n",
              c.clients, c.mib, c.tensors, update_bytes / 1e6, c.reps, loadavg().c_str(),
              std::thread::hardware_concurrency());
  std::printf("| method | GB/s (median) | spread (min-max) | vs memcpy |\n| --- | --- | --- | --- |\n");
  for (const auto& m : order) {
    const Stats st = stats(gbps[m]);
    std::printf("| %s | %.2f | %.2f-%.2f | %.0f %% |\n", m.c_str(), st.median, st.min, st.max,
                100 * st.median / ceiling.median);
  }
  return 0;
}
