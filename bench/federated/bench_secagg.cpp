// Cost of secure aggregation's cryptographic core (secagg.h), one thread, no network: per round,
// the mean client CPU time (quantize; keys + shares; masked input) and the server's unmasking time
// with `--dropouts` participants dropped after sharing their keys, for each cohort size in
// `--clients`, `--coords` coordinates, the complete graph (SecAgg) and, with --degree K, SecAgg+.
// Bytes are what each message would carry on the wire (32-bit values, unpacked): the client's
// upload and the server's download of masked inputs. The table gives medians over `--reps`.
//   bench_secagg [--clients 8,16] [--coords 1048576] [--degree 0] [--dropouts 1] [--reps 3]
#include <conflux/federated/secagg.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sa = conflux::federated::secagg;
using Clock = std::chrono::steady_clock;

namespace {

struct Config {
  std::vector<uint32_t> clients = {8, 16};
  size_t coords = 1 << 20;
  uint32_t degree = 0;
  uint32_t dropouts = 1;
  int reps = 3;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "bench_secagg: %s\nusage: bench_secagg [--clients 8,16] [--coords N] "
                       "[--degree K] [--dropouts D] [--reps R]\n", why.c_str());
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
    if (a == "--clients") {
      c.clients.clear();
      std::stringstream ss(next());
      for (std::string s; std::getline(ss, s, ',');) c.clients.push_back(std::atoi(s.c_str()));
    } else if (a == "--coords") c.coords = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--degree") c.degree = std::atoi(next().c_str());
    else if (a == "--dropouts") c.dropouts = std::atoi(next().c_str());
    else if (a == "--reps") c.reps = std::atoi(next().c_str());
    else usage("unknown argument " + a);
  }
  if (c.clients.empty() || c.coords < 1 || c.reps < 1) usage("bad --clients, --coords or --reps");
  return c;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Timing {
  double quantize_s, keys_s, mask_s, unmask_s;
  size_t client_up_bytes, server_in_bytes;
};

Timing one_round(const sa::Params& p, uint32_t dropouts, const std::vector<float>& x, int rep) {
  const uint32_t n = p.num_participants;
  Timing t{};
  sa::Quantizer qz(1.0, p.modulus_bits, n);
  auto qrng = sa::RandomSource::seeded(rep, "bench quantize");
  auto t0 = Clock::now();
  const auto xq = qz.quantize(x.data(), x.size(), qrng);
  t.quantize_s = since(t0);
  std::vector<sa::Participant> parts;
  for (uint32_t u = 0; u < n; ++u)
    parts.emplace_back(p, u, sa::RandomSource::seeded(rep, "bench " + std::to_string(u)));
  t0 = Clock::now();
  std::vector<sa::KeyAdvertisement> roster;
  for (auto& q : parts) roster.push_back(q.advertise());
  std::vector<std::vector<sa::EncryptedShares>> inbox(n);
  std::vector<uint32_t> u2;
  size_t share_bytes = 0;
  for (auto& q : parts) {
    for (auto& e : q.share_keys(roster)) {
      share_bytes += e.ciphertext.size() + 8;
      inbox[e.to].push_back(std::move(e));
    }
    u2.push_back(q.id());
  }
  t.keys_s = since(t0) / n;
  t0 = Clock::now();
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> masked;
  for (uint32_t u = 0; u < n; ++u) {
    auto y = parts[u].masked_input(inbox[u], xq);
    if (u >= dropouts) masked.emplace_back(u, std::move(y));  // the first `dropouts` never arrive
  }
  t.mask_s = since(t0) / n;
  std::vector<uint32_t> u3;
  for (auto& m : masked) u3.push_back(m.first);
  std::vector<sa::UnmaskResponse> responses;
  size_t unmask_bytes = 0;
  for (uint32_t u : u3) {
    responses.push_back(parts[u].unmask(u3));
    unmask_bytes += 4 + 44 * (responses.back().self_mask_shares.size() + responses.back().key_shares.size());
  }
  t0 = Clock::now();
  const auto sum = sa::unmask_sum(p, roster, u2, masked, responses);
  t.unmask_s = since(t0);
  if (sum.size() != x.size()) std::abort();
  t.client_up_bytes = 68 + share_bytes / n + x.size() * 4 + unmask_bytes / u3.size();
  t.server_in_bytes = n * 68 + share_bytes + u3.size() * x.size() * 4 + unmask_bytes;
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const Config c = parse(argc, argv);
  std::vector<float> x(c.coords);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 2654435761u % 2001) / 1000.0 - 1.0);
  std::ifstream la("/proc/loadavg");
  std::string load;
  std::getline(la, load);
  std::printf("secure aggregation core, 1 thread, %zu coordinates (32-bit), %d repetitions; load %s\n",
              c.coords, c.reps, load.c_str());
  std::printf("| participants | degree | dropouts | client quantize ms | client keys+shares ms | "
              "client mask ms | server unmask ms | client upload MB | server download MB |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (uint32_t n : c.clients) {
    sa::Params p;
    p.num_participants = n;
    p.degree = c.degree;
    const uint32_t k = sa::validate([&] { auto q = p; q.threshold = 1; return q; }());
    p.threshold = std::max<uint32_t>(1, std::min(k, k / 2 + 1));
    p.round = 1;
    p.graph_seed = 1;
    if (c.dropouts + p.threshold > n) usage("too many --dropouts for the threshold");
    std::vector<double> qt, kt, mt, ut;
    Timing last{};
    for (int r = 0; r < c.reps; ++r) {
      last = one_round(p, c.dropouts, x, r);
      qt.push_back(last.quantize_s);
      kt.push_back(last.keys_s);
      mt.push_back(last.mask_s);
      ut.push_back(last.unmask_s);
    }
    std::printf("| %u | %u | %u | %.1f | %.2f | %.1f | %.1f | %.2f | %.2f |\n", n, k, c.dropouts,
                1e3 * median(qt), 1e3 * median(kt), 1e3 * median(mt), 1e3 * median(ut),
                last.client_up_bytes / 1e6, last.server_in_bytes / 1e6);
  }
  return 0;
}
