// Secure aggregation in federated rounds (`[secure_aggregation] enabled = true` in a federate
// config): the round driver that runs the four SecAgg / SecAgg+ stages of federated/secagg.h as
// job-layer batches, and the participant's side of those stages. Torch-free.
//
// Stages of one round attempt (each a targeted batch with its own deadline, max one attempt per
// task: a participant's secagg state cannot be replayed):
//   0. "secagg_advertise" to the cohort: each participant makes its two X25519 key pairs and
//      answers {c_pk, s_pk, num_examples}. The coordinator binds each advertisement to the
//      authenticated CURVE identity the result came from (TaskResult::worker; the task was
//      targeted at that identity) and relays the roster as (id, identity, c_pk, s_pk): a
//      participant cannot advertise keys under another's identity. Survivors U1.
//   1. "secagg_share_keys" to U1 with the roster: Shamir shares of the self-mask seed and of the
//      mask secret key, crypto_box-encrypted per neighbour (the coordinator relays ciphertexts
//      it cannot read). Survivors U2.
//   2. "fit" to U2, with the ciphertexts addressed to each and N2 = the sum of num_examples over
//      U2: the participant trains, clips its update delta = w_local - w_global coordinate-wise to
//      [-clip, clip], weights it by num_examples / N2 (under DP instead: SecaggDp below),
//      quantizes it and returns only the masked
//      vector (tensor "secagg.masked", int32 carrying the uint32 values bit for bit) plus its summary (no update norm). Survivors U3.
//   3. "secagg_unmask" to U3 with U3: shares of the survivors' self-mask seeds and of the dropped
//      participants' (U2 \ U3) mask keys; never both kinds for one peer (secagg::Participant).
//   The coordinator removes the masks (secagg::unmask_sum), dequantizes the sum and rescales it
//   by N2 / N3 (N3: num_examples summed over U3), which gives FedAvg's example-weighted mean of
//   the survivors' clipped updates up to quantization: per coordinate within
//   (N2 / N3) * |U3| / scale (SecaggOutcome::bound; the weights num_examples are public, as in
//   plain FedAvg).
// Every stage JSON carries the coordinator process's random `session`: a participant keeps its keys
// for a re-sent request of the same (round tag, id, n, session) and starts afresh otherwise, so a
// coordinator restarted mid-round (which reuses the round tag) gets a clean attempt.
// A stage that ends with fewer than t survivors, or an unmasking that cannot rebuild a secret,
// makes the attempt incomplete with a "secure aggregation below threshold" reason; a sampled cohort
// that t or the neighbour graph does not fit (t > k, fewer than 3 with the automatic t, odd k with
// odd n) with "secure aggregation cannot run with a cohort of N". Both are retried like any round.
//
// Test hooks (environment; never set in production): CONFLUX_SECAGG_TEST_EXIT_AT = a stage name
// (advertise, share_keys, masked_input, unmask) makes the participant exit(3) when that stage's
// task arrives; CONFLUX_SECAGG_DEBUG_DIR makes the participant write its clipped, unweighted
// update (plain-r<round>-<id>.f32) and the coordinator the masked vectors it received
// (masked-r<round>-<id>.u32), so that a test can check that the coordinator held only masked
// vectors.
#pragma once

#include <conflux/core/config.h>
#include <conflux/protocol/dispatcher.h>
#include <conflux/protocol/executor.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace conflux::tasks {

// [secure_aggregation] of a federate config.
struct SecaggConfig {
  bool enabled = false;
  int64_t threshold = 0;   // t; 0: floor((k + 1) / 2) + 1 with k the effective neighbour count
  int64_t neighbours = 0;  // SecAgg+ degree k; 0: every other cohort member (SecAgg)
  double clip = 1.0;       // coordinate clip of each update delta
  int64_t modulus_bits = 32;
  double advertise_s = 30, share_keys_s = 30, masked_input_s = 300, unmask_s = 30;

  void bind(ConfigBinder& b);
};

// DP-FedAvg under secure aggregation (`privacy.enabled` with `secure_aggregation.enabled`):
// distributed Gaussian noise. The coordinator never sees an update, so each participant clips its
// own (L2 norm `clip` = S), adds N(0, sigma_i^2) to every coordinate with
//   sigma_i = z * S / sqrt(m),  m = max(min_summed, t)
// (t: the attempt's secagg threshold), and masks it unweighted. A completed attempt sums at least
// m masked inputs (fewer fails it, like a round below min_clients), so the unmasked sum carries
// noise of variance >= m * sigma_i^2 = (z S)^2: the central mechanism's, whoever dropped out
// (more survivors only add noise). The coordinator divides the sum by expected_clients (q N), as
// DP-FedAvg does. The quantizer's coordinate range becomes max(secure_aggregation.clip,
// S + 6 sigma_i), so that clamping a noised coordinate has probability < 2e-9. Noise comes from
// SecureRandom, or with noise_seed >= 0 from Stream(noise_seed, "secagg-dp-noise", round tag,
// participant id): reproducible and not private.
struct SecaggDp {
  bool enabled = false;
  double clip = 1.0;              // S
  double noise_multiplier = 1.0;  // z
  double expected_clients = 1.0;  // q N
  int64_t min_summed = 1;         // federate.min_clients
  int64_t noise_seed = -1;
};

// ---- the participant's side ----

// One worker's secure-aggregation state (the latest round attempt it was asked to join), shared
// by the executors of the four stages. Thread-safe (one mutex).
class SecaggClient {
 public:
  // Stage 0; `stage` is the task's secagg JSON. Returns {c_pk, s_pk} (hex).
  nlohmann::json advertise(const nlohmann::json& stage);
  // Stage 1: {shares: [{to, ct}]}.
  nlohmann::json share_keys(const nlohmann::json& stage);
  // Stage 2: `delta` is the update w_local - w_global, flattened in parameter order;
  // `num_examples` its weight (ignored under DP: the stage's "dp" object, SecaggDp). Returns the
  // masked quantized vector.
  std::vector<uint32_t> masked_input(const nlohmann::json& stage, std::vector<float> delta, int64_t num_examples);
  // Stage 3: {self: [[owner, holder, y0..y4]...], keys: [...]}.
  nlohmann::json unmask(const nlohmann::json& stage);
  // The test hook: exits the process if CONFLUX_SECAGG_TEST_EXIT_AT names `stage`.
  static void test_exit_hook(const std::string& stage);

 private:
  struct State;
  State& current(const nlohmann::json& stage, const char* what);
  std::mutex mu_;
  std::shared_ptr<State> state_;
};

// Executor of "secagg_share_keys" and "secagg_unmask" (the params: {"secagg": {...}}).
// "secagg_advertise" and the masked "fit" run in the fit executor (fit_task.h), which knows the
// participant's data and model.
std::shared_ptr<protocol::TaskExecutor> make_secagg_executor(std::shared_ptr<SecaggClient> client);

// ---- the coordinator's side ----

struct SecaggOutcome {
  bool complete = false;
  std::string why;                            // when incomplete
  std::vector<double> mean_delta;             // the example-weighted mean of the U3 updates
                                              // (DP: their noised sum / expected_clients)
  std::map<size_t, protocol::TaskResult> fit; // U3's fit results by cohort index (no tensors)
  nlohmann::json record;                      // rounds.jsonl's "secure_aggregation" object
  nlohmann::json dropped = nlohmann::json::array();  // {participant, stage, why, kind, detail}
  uint64_t bytes_in = 0;
};

// Builds the task of `kind` for cohort member `index` with its stage JSON (the caller adds the
// model/local params and, for "fit", the shared global weights).
using SecaggTaskFn = std::function<protocol::TaskSpec(size_t index, const std::string& kind,
                                                      const nlohmann::json& stage)>;

// Runs the four stages for `cohort` (identities, sorted); `num_values` is the flattened model
// size. Never throws for participant misbehaviour or dropouts: the outcome says why.
SecaggOutcome run_secagg_round(protocol::TaskDispatcher& dispatcher, const SecaggConfig& cfg,
                               const std::vector<std::string>& cohort, int64_t round, int64_t attempt,
                               uint64_t seed, size_t num_values, const SecaggTaskFn& task,
                               const SecaggDp& dp = {});

}  // namespace conflux::tasks
