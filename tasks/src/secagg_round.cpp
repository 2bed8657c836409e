// Secure aggregation in federated rounds (secagg_round.h): the coordinator's four stage batches
// and the participant's state across them. Torch-free; the crypto is federated/secagg.h.
#include <conflux/tasks/secagg_round.h>

#include <conflux/core/atomic_file.h>
#include <conflux/core/error.h>
#include <conflux/core/log.h>
#include <conflux/core/rng.h>
#include <conflux/federated/secagg.h>
#include <conflux/federated/weights.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>

namespace conflux::tasks {

namespace sa = conflux::federated::secagg;
namespace proto = conflux::protocol;
using json = nlohmann::json;
using std::chrono::milliseconds;

void SecaggConfig::bind(ConfigBinder& b) {
  b.field("secure_aggregation.enabled", enabled,
          "run each round as SecAgg/SecAgg+: the coordinator learns only the sum of the survivors' updates");
  b.field("secure_aggregation.threshold", threshold,
          "t: shares that rebuild a secret and survivors a round needs (0: floor((k+1)/2)+1)").min(0);
  b.field("secure_aggregation.neighbours", neighbours,
          "SecAgg+ neighbours per participant, even (0: every other cohort member)").min(0);
  b.field("secure_aggregation.clip", clip, "each update coordinate (w_local - w_global) is clipped to [-clip, clip]")
      .min(1e-12);
  b.field("secure_aggregation.modulus_bits", modulus_bits, "quantized values live mod 2^bits").range(8, 32);
  b.field("secure_aggregation.advertise_s", advertise_s, "deadline of the advertise-keys stage").min(0.1);
  b.field("secure_aggregation.share_keys_s", share_keys_s, "deadline of the share-keys stage").min(0.1);
  b.field("secure_aggregation.masked_input_s", masked_input_s,
          "deadline of the masked-input stage (local training included)").min(0.1);
  b.field("secure_aggregation.unmask_s", unmask_s, "deadline of the unmasking stage").min(0.1);
}

namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}

std::vector<uint8_t> unhex(const std::string& s, const char* what) {
  auto nib = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    CONFLUX_THROW(ProtocolError, "secure aggregation: {} is not lowercase hex", what);
  };
  if (s.size() % 2) CONFLUX_THROW(ProtocolError, "secure aggregation: {} has an odd hex length", what);
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(nib(s[2 * i]) << 4 | nib(s[2 * i + 1]));
  return out;
}

sa::Key32 key32(const json& j, const char* what) {
  const auto v = unhex(j.get<std::string>(), what);
  if (v.size() != 32) CONFLUX_THROW(ProtocolError, "secure aggregation: {} has {} bytes, expected 32", what, v.size());
  sa::Key32 k;
  std::copy(v.begin(), v.end(), k.begin());
  return k;
}

json shares_json(const std::vector<std::pair<uint32_t, sa::Share>>& list) {
  json a = json::array();
  for (const auto& [owner, s] : list)
    a.push_back({owner, s.holder, s.y[0], s.y[1], s.y[2], s.y[3], s.y[4]});
  return a;
}

std::vector<std::pair<uint32_t, sa::Share>> shares_from(const json& a) {
  std::vector<std::pair<uint32_t, sa::Share>> out;
  for (const auto& e : a) {
    if (!e.is_array() || e.size() != 7)
      CONFLUX_THROW(ProtocolError, "secure aggregation: a share is not [owner, holder, y0..y4]");
    sa::Share s;
    s.holder = e[1].get<uint32_t>();
    for (int c = 0; c < 5; ++c) s.y[c] = e[2 + c].get<uint64_t>();
    out.emplace_back(e[0].get<uint32_t>(), s);
  }
  return out;
}

sa::Params params_of(const json& st) {
  sa::Params p;
  p.num_participants = st.at("n").get<uint32_t>();
  p.threshold = st.at("threshold").get<uint32_t>();
  p.degree = st.at("degree").get<uint32_t>();
  p.round = st.at("round").get<uint64_t>();
  p.graph_seed = st.at("graph_seed").get<uint64_t>();
  p.modulus_bits = st.at("bits").get<int>();
  return p;
}

std::string debug_dir() {
  const char* d = std::getenv("CONFLUX_SECAGG_DEBUG_DIR");
  return d ? d : "";
}

}  // namespace

// ---- the participant ----

struct SecaggClient::State {
  sa::Params params;
  uint64_t session = 0;  // the coordinator process's (a restarted coordinator reuses round tags)
  uint32_t id = 0;
  double clip = 0;
  std::unique_ptr<sa::Participant> p;
  sa::KeyAdvertisement mine;
};

void SecaggClient::test_exit_hook(const std::string& stage) {
  const char* at = std::getenv("CONFLUX_SECAGG_TEST_EXIT_AT");
  if (at && stage == at) {
    log::warn("secure aggregation: CONFLUX_SECAGG_TEST_EXIT_AT={}: exiting (test hook)", at);
    std::_Exit(3);
  }
}

SecaggClient::State& SecaggClient::current(const json& stage, const char* what) {
  if (!state_ || state_->params.round != stage.at("round").get<uint64_t>() || state_->id != stage.at("id").get<uint32_t>() ||
      state_->params.num_participants != stage.at("n").get<uint32_t>() ||
      state_->session != stage.value("session", uint64_t{0}))
    CONFLUX_THROW(ProtocolError, "secure aggregation: a {} request for round tag {} (participant {}), but this "
                  "participant advertised no keys for it", what, stage.at("round").get<uint64_t>(),
                  stage.at("id").get<uint32_t>());
  return *state_;
}

json SecaggClient::advertise(const json& stage) {
  test_exit_hook("advertise");
  std::lock_guard<std::mutex> lock(mu_);
  auto s = std::make_shared<State>();
  s->params = params_of(stage);
  // The same request again (the job layer re-sends unfinished attempts after a reconnection): the
  // same keys, so that the coordinator's copy stays valid.
  s->session = stage.value("session", uint64_t{0});
  if (state_ && state_->params.round == s->params.round && state_->id == stage.at("id").get<uint32_t>() &&
      state_->params.num_participants == s->params.num_participants && state_->session == s->session)
    return {{"c_pk", hex(state_->mine.c_pk.data(), 32)}, {"s_pk", hex(state_->mine.s_pk.data(), 32)}};
  s->id = stage.at("id").get<uint32_t>();
  s->clip = stage.at("clip").get<double>();
  s->p = std::make_unique<sa::Participant>(s->params, s->id, sa::RandomSource::secure());
  s->mine = s->p->advertise();
  state_ = s;  // a new round attempt replaces the old state (its secrets are dropped)
  return {{"c_pk", hex(s->mine.c_pk.data(), 32)}, {"s_pk", hex(s->mine.s_pk.data(), 32)}};
}

json SecaggClient::share_keys(const json& stage) {
  test_exit_hook("share_keys");
  std::lock_guard<std::mutex> lock(mu_);
  State& s = current(stage, "share-keys");
  std::vector<sa::KeyAdvertisement> roster;
  bool me = false;
  for (const auto& e : stage.at("roster")) {
    sa::KeyAdvertisement a{e.at("id").get<uint32_t>(), key32(e.at("c_pk"), "c_pk"), key32(e.at("s_pk"), "s_pk")};
    if (a.id == s.id) {
      if (a.c_pk != s.mine.c_pk || a.s_pk != s.mine.s_pk)
        CONFLUX_THROW(ProtocolError, "secure aggregation round tag {}: the relayed roster carries other keys for "
                      "this participant ({}) than it advertised", s.params.round, s.id);
      me = true;
      continue;
    }
    roster.push_back(a);
  }
  if (!me)
    CONFLUX_THROW(ProtocolError, "secure aggregation round tag {}: this participant ({}) is not in the relayed roster",
                  s.params.round, s.id);
  json out = json::array();
  for (const auto& e : s.p->share_keys(roster))
    out.push_back({{"to", e.to}, {"ct", hex(e.ciphertext.data(), e.ciphertext.size())}});
  return {{"shares", out}};
}

std::vector<uint32_t> SecaggClient::masked_input(const json& stage, std::vector<float> delta, int64_t num_examples) {
  std::lock_guard<std::mutex> lock(mu_);
  State& s = current(stage, "masked-input");
  for (const float v : delta)
    if (!std::isfinite(v)) CONFLUX_THROW(DataError, "secure aggregation: the local update has a NaN or Inf value");
  auto debug_plain = [&] {
    if (const std::string dir = debug_dir(); !dir.empty()) {
      std::string bytes(reinterpret_cast<const char*>(delta.data()), delta.size() * sizeof(float));
      write_file_atomic(fmt::format("{}/plain-r{}-{}.f32", dir, s.params.round, s.id), bytes);
    }
  };
  if (const auto dp = stage.find("dp"); dp != stage.end()) {
    // DP-FedAvg (SecaggDp): clip to L2 norm S, add this participant's share of the noise, unweighted.
    const double clip = dp->at("clip").get<double>(), stddev = dp->at("noise_stddev").get<double>();
    const int64_t seed = dp->at("noise_seed").get<int64_t>();
    if (!(clip > 0) || !(stddev >= 0))
      CONFLUX_THROW(ProtocolError, "secure aggregation round tag {}: dp clip {} / noise_stddev {} out of range",
                    s.params.round, clip, stddev);
    const double factor = federated::clip_factor(federated::l2_norm(delta.data(), delta.size()), clip);
    for (auto& v : delta) v = static_cast<float>(static_cast<double>(v) * factor);
    debug_plain();
    std::unique_ptr<conflux::RandomSource> noise;
    if (seed >= 0) noise = std::make_unique<Stream>(static_cast<uint64_t>(seed), "secagg-dp-noise", s.params.round, s.id);
    else noise = std::make_unique<SecureRandom>();
    if (stddev > 0)
      for (auto& v : delta) v = static_cast<float>(static_cast<double>(v) + stddev * noise->normal());
    for (auto& v : delta) v = std::clamp(v, static_cast<float>(-s.clip), static_cast<float>(s.clip));
  } else {
    const double total = stage.at("weight_total").get<double>();
    if (!(total >= static_cast<double>(num_examples)) || num_examples < 1)
      CONFLUX_THROW(ProtocolError, "secure aggregation round tag {}: weight_total {} is below this participant's "
                    "num_examples {}", s.params.round, total, num_examples);
    for (auto& v : delta) v = std::clamp(v, static_cast<float>(-s.clip), static_cast<float>(s.clip));
    debug_plain();
    const double w = static_cast<double>(num_examples) / total;
    for (auto& v : delta) v = static_cast<float>(static_cast<double>(v) * w);
  }
  std::vector<sa::EncryptedShares> received;
  for (const auto& e : stage.at("shares"))
    received.push_back({e.at("from").get<uint32_t>(), s.id, unhex(e.at("ct").get<std::string>(), "ciphertext")});
  sa::Quantizer q(s.clip, static_cast<int>(s.params.modulus_bits), s.params.num_participants);
  sa::RandomSource rng = sa::RandomSource::secure();
  return s.p->masked_input(received, q.quantize(delta.data(), delta.size(), rng));
}

json SecaggClient::unmask(const json& stage) {
  test_exit_hook("unmask");
  std::lock_guard<std::mutex> lock(mu_);
  State& s = current(stage, "unmasking");
  const auto survivors = stage.at("survivors").get<std::vector<uint32_t>>();
  const sa::UnmaskResponse r = s.p->unmask(survivors);  // refuses a second call and too few survivors
  return {{"self", shares_json(r.self_mask_shares)}, {"keys", shares_json(r.key_shares)}};
}

namespace {

class SecaggExecutor final : public proto::TaskExecutor {
 public:
  explicit SecaggExecutor(std::shared_ptr<SecaggClient> c) : client_(std::move(c)) {}
  proto::TaskOutput execute(const proto::TaskContext& ctx) override {
    const json p = json::parse(ctx.params, nullptr, false);
    if (p.is_discarded() || !p.contains("secagg") || !p["secagg"].is_string())
      CONFLUX_THROW(ConfigError, "{} task {}: params carry no 'secagg' stage", ctx.kind, ctx.task_id);
    const json stage = json::parse(p["secagg"].get<std::string>());
    proto::TaskOutput out;
    if (ctx.kind == "secagg_share_keys") out.summary = client_->share_keys(stage).dump();
    else if (ctx.kind == "secagg_unmask") out.summary = client_->unmask(stage).dump();
    else CONFLUX_THROW(InternalError, "secagg executor registered for kind '{}'", ctx.kind);
    return out;
  }

 private:
  std::shared_ptr<SecaggClient> client_;
};

}  // namespace

std::shared_ptr<proto::TaskExecutor> make_secagg_executor(std::shared_ptr<SecaggClient> client) {
  return std::make_shared<SecaggExecutor>(std::move(client));
}

// ---- the coordinator ----

namespace {

struct Stage {
  const char* name;
  const char* kind;
  double deadline_s;
};

}  // namespace

SecaggOutcome run_secagg_round(proto::TaskDispatcher& dispatcher, const SecaggConfig& cfg,
                               const std::vector<std::string>& cohort, int64_t round, int64_t attempt,
                               uint64_t seed, size_t num_values, const SecaggTaskFn& task,
                               const SecaggDp& dp) {
  SecaggOutcome out;
  const uint32_t n = static_cast<uint32_t>(cohort.size());
  json& rec = out.record;
  sa::Params params;
  params.num_participants = n;
  params.degree = static_cast<uint32_t>(cfg.neighbours);
  params.round = (static_cast<uint64_t>(round) << 16) | static_cast<uint64_t>(attempt & 0xFFFF);
  params.graph_seed = Stream(seed, "secagg-graph", static_cast<uint64_t>(round), static_cast<uint64_t>(attempt)).next_u64();
  params.modulus_bits = static_cast<int>(cfg.modulus_bits);
  const uint32_t k = (params.degree == 0 || n < 2 || params.degree >= n - 1) ? (n > 0 ? n - 1 : 0) : params.degree;
  params.threshold = cfg.threshold > 0 ? static_cast<uint32_t>(cfg.threshold) : (k + 1) / 2 + 1;
  rec = {{"cohort", n}, {"threshold", params.threshold}, {"neighbours", k}, {"modulus_bits", cfg.modulus_bits},
         {"clip", cfg.clip}};
  try {
    if (cfg.threshold == 0) params.threshold = std::min(params.threshold, k);
    if (params.threshold < 2 && cfg.threshold == 0)
      CONFLUX_THROW(ConfigError, "a cohort of {} is too small (needs at least 3 participants)", n);
    sa::validate(params);
  } catch (const Error& e) {
    out.why = fmt::format("secure aggregation cannot run with a cohort of {}: {}", n, e.message());
    return out;
  }
  const uint32_t t = params.threshold;
  // Under DP each participant adds sigma_i = z S / sqrt(m); the quantizer's range covers the noise.
  const int64_t min_summed = dp.enabled ? std::max<int64_t>(dp.min_summed, t) : 0;
  const double sigma_i =
      dp.enabled ? dp.noise_multiplier * dp.clip / std::sqrt(static_cast<double>(min_summed)) : 0.0;
  const double qclip = dp.enabled ? std::max(cfg.clip, dp.clip + 6 * sigma_i) : cfg.clip;
  // A restarted coordinator asks for the same round tags again: its session number tells the
  // participants that this is a new attempt (fresh keys), not a re-sent request of the old one.
  static const uint64_t session = SecureRandom().next_u64() >> 11;  // exact in a JSON double too
  json base = {{"round", params.round}, {"n", n}, {"threshold", t}, {"degree", params.degree},
               {"graph_seed", params.graph_seed}, {"bits", cfg.modulus_bits}, {"clip", qclip},
               {"session", session}};
  if (dp.enabled) {
    rec["clip"] = qclip;
    rec["dp"] = {{"clip", dp.clip}, {"noise_stddev_each", sigma_i}, {"min_summed", min_summed},
                 {"expected_clients", dp.expected_clients}};
  }
  // Runs one stage's batch for `members` (cohort indices); returns the results by index.
  auto stage = [&](const Stage& st, const std::vector<uint32_t>& members,
                   const std::function<json(uint32_t)>& stage_json) {
    const auto started = std::chrono::steady_clock::now();
    proto::BatchSpec batch;
    batch.round = static_cast<uint64_t>(round);
    batch.quorum = std::min<size_t>(t, members.size());
    batch.deadline = milliseconds(static_cast<int64_t>(st.deadline_s * 1000));
    batch.max_attempts = 1;
    for (uint32_t id : members) {
      json sj = base;
      sj["id"] = id;
      sj.update(stage_json(id));
      proto::TaskSpec spec = task(id, st.kind, sj);
      spec.target = cohort[id];
      batch.tasks.push_back(std::move(spec));
    }
    std::map<uint32_t, proto::TaskResult> got;
    proto::BatchReport report = dispatcher.run_batch(
        std::move(batch),
        [&](proto::TaskResult&& r) {
          for (const auto& tn : r.outputs) out.bytes_in += tn.byte_length();
          out.bytes_in += r.summary.size();
          const uint32_t id = members[r.index];
          if (r.worker != cohort[id]) {  // targeted: the dispatcher guarantees it; checked anyway
            out.dropped.push_back({{"participant", cohort[id]}, {"stage", st.name}, {"why", "wrong sender"},
                                   {"detail", "answered by " + r.worker}});
            return;
          }
          got.emplace(id, std::move(r));
        },
        milliseconds(static_cast<int64_t>(st.deadline_s * 1000) + 5000));
    for (const auto& m : report.missing)
      out.dropped.push_back({{"participant", cohort[members[m.index]]}, {"stage", st.name},
                             {"why", proto::missing_name(m.why)}, {"kind", proto::task_error_kind_name(m.error_kind)},
                             {"detail", m.detail}});
    rec["stages"][st.name] = {{"asked", members.size()}, {"answered", got.size()},
                              {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    return got;
  };
  auto below = [&](const char* st, size_t have) {
    out.why = fmt::format("secure aggregation below threshold: {} participant(s) survived the {} stage, "
                          "secure_aggregation.threshold t = {}", have, st, t);
  };
  std::vector<uint32_t> all(n);
  for (uint32_t i = 0; i < n; ++i) all[i] = i;
  // 0. Advertise keys.
  std::vector<sa::KeyAdvertisement> roster;
  std::map<uint32_t, int64_t> examples;
  json roster_json = json::array();
  for (auto& [id, r] : stage({"advertise", "secagg_advertise", cfg.advertise_s}, all, [](uint32_t) { return json::object(); })) {
    try {
      const json s = json::parse(r.summary);
      sa::KeyAdvertisement a{id, key32(s.at("c_pk"), "c_pk"), key32(s.at("s_pk"), "s_pk")};
      const int64_t ne = s.at("num_examples").get<int64_t>();
      if (ne < 1) CONFLUX_THROW(DataError, "num_examples {} < 1", ne);
      roster.push_back(a);
      examples[id] = ne;
      // Bound to the authenticated CURVE identity the result came from.
      roster_json.push_back({{"id", id}, {"identity", r.worker}, {"c_pk", s["c_pk"]}, {"s_pk", s["s_pk"]}});
    } catch (const std::exception& e) {
      out.dropped.push_back({{"participant", cohort[id]}, {"stage", "advertise"}, {"why", "rejected"}, {"detail", e.what()}});
    }
  }
  if (roster.size() < t) {
    below("advertise", roster.size());
    return out;
  }
  // 1. Share keys.
  std::vector<uint32_t> u1;
  for (const auto& a : roster) u1.push_back(a.id);
  std::map<uint32_t, json> inbox;  // recipient -> [{from, ct}]
  std::vector<uint32_t> u2;
  for (auto& [id, r] : stage({"share_keys", "secagg_share_keys", cfg.share_keys_s}, u1,
                             [&](uint32_t) { return json{{"roster", roster_json}}; })) {
    try {
      const json s = json::parse(r.summary);
      json mine = json::object();
      for (const auto& e : s.at("shares")) {
        const uint32_t to = e.at("to").get<uint32_t>();
        if (!examples.count(to) || to == id)
          CONFLUX_THROW(ProtocolError, "shares addressed to {}, not a member of U1", to);
        mine[std::to_string(to)] = e.at("ct").get<std::string>();
      }
      for (auto& [to, ct] : mine.items()) inbox[static_cast<uint32_t>(std::stoul(to))].push_back({{"from", id}, {"ct", ct}});
      u2.push_back(id);
    } catch (const std::exception& e) {
      out.dropped.push_back({{"participant", cohort[id]}, {"stage", "share_keys"}, {"why", "rejected"}, {"detail", e.what()}});
    }
  }
  if (u2.size() < t) {
    below("share_keys", u2.size());
    return out;
  }
  // Only ciphertexts from U2 senders travel on (a sender outside U2 did not finish sharing).
  const std::set<uint32_t> in_u2(u2.begin(), u2.end());
  int64_t n2 = 0;
  for (uint32_t id : u2) n2 += examples[id];
  // 2. Masked input (the fit tasks).
  std::vector<std::pair<uint32_t, std::vector<uint32_t>>> masked;
  const std::string dbg = debug_dir();
  for (auto& [id, r] : stage({"masked_input", "fit", cfg.masked_input_s}, u2, [&](uint32_t id) {
         json sh = json::array();
         for (const auto& e : inbox[id])
           if (in_u2.count(e["from"].get<uint32_t>())) sh.push_back(e);
         json st = {{"shares", sh}, {"weight_total", n2}};
         if (dp.enabled) st["dp"] = {{"clip", dp.clip}, {"noise_stddev", sigma_i}, {"noise_seed", dp.noise_seed}};
         return st;
       })) {
    try {
      if (r.outputs.size() != 1 || r.outputs[0].name() != "secagg.masked" || r.outputs[0].dtype() != DType::I32 ||
          r.outputs[0].byte_length() != num_values * sizeof(uint32_t))
        CONFLUX_THROW(DataError, "the masked input is not one int32 tensor (uint32 bit patterns) 'secagg.masked' of {} values", num_values);
      const json s = json::parse(r.summary);
      if (s.at("num_examples").get<int64_t>() != examples[id])
        CONFLUX_THROW(DataError, "num_examples {} differs from the advertised {}", s.at("num_examples").get<int64_t>(),
                      examples[id]);
      const uint32_t* v = r.outputs[0].as<uint32_t>();
      masked.emplace_back(id, std::vector<uint32_t>(v, v + num_values));
      if (!dbg.empty())
        write_file_atomic(fmt::format("{}/masked-r{}-{}.u32", dbg, params.round, id),
                          std::string(reinterpret_cast<const char*>(v), num_values * sizeof(uint32_t)));
      r.outputs.clear();
      out.fit.emplace(id, std::move(r));
    } catch (const std::exception& e) {
      out.dropped.push_back({{"participant", cohort[id]}, {"stage", "masked_input"}, {"why", "rejected"}, {"detail", e.what()}});
    }
  }
  if (masked.size() < t) {
    below("masked_input", masked.size());
    return out;
  }
  if (dp.enabled && static_cast<int64_t>(masked.size()) < min_summed) {
    out.why = fmt::format("secure aggregation with privacy: {} masked input(s), fewer than the {} whose noise "
                          "shares add up to the round's noise (max(federate.min_clients, t))", masked.size(), min_summed);
    return out;
  }
  // 3. Unmasking.
  std::vector<uint32_t> u3;
  for (const auto& m : masked) u3.push_back(m.first);
  std::vector<sa::UnmaskResponse> responses;
  for (auto& [id, r] : stage({"unmask", "secagg_unmask", cfg.unmask_s}, u3,
                             [&](uint32_t) { return json{{"survivors", u3}}; })) {
    try {
      const json s = json::parse(r.summary);
      responses.push_back({id, shares_from(s.at("self")), shares_from(s.at("keys"))});
    } catch (const std::exception& e) {
      out.dropped.push_back({{"participant", cohort[id]}, {"stage", "unmask"}, {"why", "rejected"}, {"detail", e.what()}});
    }
  }
  if (responses.size() < t) {
    below("unmask", responses.size());
    return out;
  }
  std::vector<uint32_t> sum;
  try {
    sum = sa::unmask_sum(params, roster, u2, masked, responses);
  } catch (const sa::NotEnoughSharesError& e) {
    out.why = fmt::format("secure aggregation below threshold: {}", e.message());
    return out;
  } catch (const Error& e) {
    out.why = fmt::format("secure aggregation failed to unmask: {}", e.message());
    return out;
  }
  const sa::Quantizer q(qclip, static_cast<int>(cfg.modulus_bits), n);
  const std::vector<float> s = q.dequantize_sum(sum);
  int64_t n3 = 0;
  for (uint32_t id : u3) n3 += examples[id];
  // FedAvg: the weighted mean over U3 (weights were divided by N2); DP: the sum over q N.
  const double rescale = dp.enabled ? 1.0 / dp.expected_clients : static_cast<double>(n2) / static_cast<double>(n3);
  out.mean_delta.resize(s.size());
  for (size_t i = 0; i < s.size(); ++i) out.mean_delta[i] = static_cast<double>(s[i]) * rescale;
  rec["survivors"] = u3.size();
  rec["scale"] = q.scale();
  rec["weight_total_u2"] = n2;
  rec["weight_total_u3"] = n3;
  // Per coordinate: each survivor's stochastic rounding is off by < 1/scale.
  rec["bound"] = rescale * static_cast<double>(u3.size()) / q.scale();
  out.complete = true;
  return out;
}

}  // namespace conflux::tasks
