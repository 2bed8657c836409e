// Training data as fixed-length windows over a token stream (no libtorch here).
//
// The dataset's documents, each ended by an EOS token, are concatenated into one token stream
// (dataplane::Dataset::read_token_stream); window w is tokens [w*T, w*T + T + 1): T inputs and the
// T next-token targets, so documents are packed with no padding. The last `val_fraction` of the
// windows are held out for validation (never shuffled into training). Each epoch visits the
// training windows in a permutation drawn from Stream(seed, "shuffle", epoch); a global batch is
// the next B windows of that order and dp rank r takes windows [r*B/dp, (r+1)*B/dp) of it, so the
// sequence of global batches does not depend on the dp size. The position (epoch, windows
// consumed) goes into checkpoints. DP-SGD uses Poisson sampling instead: every training window
// joins a step's batch independently with probability q.
// Thread safety: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace conflux {
class Communicator;
class RandomSource;
}

namespace conflux::trainer {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int64_t num_tokens() const = 0;
  virtual std::vector<int32_t> read(int64_t first, int64_t count) const = 0;
};

// In-memory tokens (tests, generation prompts).
class VectorTokenSource final : public TokenSource {
 public:
  explicit VectorTokenSource(std::vector<int32_t> tokens) : tokens_(std::move(tokens)) {}
  int64_t num_tokens() const override { return static_cast<int64_t>(tokens_.size()); }
  std::vector<int32_t> read(int64_t first, int64_t count) const override;

 private:
  std::vector<int32_t> tokens_;
};

// A Conflux tokens dataset (needs the dataplane library). Fills the tokenizer's vocabulary size,
// EOS id and the manifest's SHA-256 when the pointers are given. Opening checks the manifest and
// every shard's structure, not its bytes: check_token_dataset does that, once per job.
std::unique_ptr<TokenSource> open_token_dataset(const std::string& dir, int64_t* vocab_size,
                                                std::string* manifest_sha256);

struct DataCheckOptions {
  bool checksums = true;    // each shard's SHA-256 against the manifest
  int64_t vocab_limit = 0;  // every token id must lie in [0, vocab_limit) (the model's vocab_size)
};

// Checks what training reads before the first step, collectively over `world`: shard s is
// checked by rank s % world.size() (its SHA-256, multi-buffer on the node's share of threads,
// then a min/max over its token column), so every byte is read once per job and the ranks share
// the work; the ranks then agree on the first failing shard (by index) and every rank throws the
// same DataError, naming the shard file (and for an out-of-vocabulary token its row and id).
// Training always reads windows from every shard, so each rank verifying all it reads would
// hash the whole dataset on every rank.
void check_token_dataset(const std::string& dir, const DataCheckOptions& options, Communicator& world);

struct DataPosition {
  int64_t epoch = 0;
  int64_t position = 0;  // training windows of `epoch` already consumed (global)
};

// How a stream of `num_tokens` tokens splits into training and validation windows of
// `context` tokens: `total` = (num_tokens - 1) / context windows, the last `val` of them
// (max(1, floor(val_fraction * total)) when val_fraction > 0, else 0) held out. Validation
// windows start at stream position train * context. Used by training (WindowSampler) and by
// evaluation to find the rows the model never trained on. Throws like WindowSampler.
struct WindowSplit {
  int64_t total = 0, train = 0, val = 0;
  int64_t val_start_token(int64_t context) const { return train * context; }
};
WindowSplit split_windows(int64_t num_tokens, int64_t context, double val_fraction);

class WindowSampler {
 public:
  WindowSampler(const TokenSource& source, int64_t context, double val_fraction, uint64_t seed);

  int64_t train_windows() const { return train_; }
  int64_t val_windows() const { return val_; }
  int64_t context() const { return context_; }

  // Window indices of the global batch at `pos` (size `global_batch`, crossing into the next
  // epoch when needed); advances `pos`.
  std::vector<int64_t> next_batch(int64_t global_batch, DataPosition* pos);
  // Poisson sampling: each training window with probability q, in increasing order.
  std::vector<int64_t> poisson_batch(double q, RandomSource& rng) const;
  // Validation window indices (absolute), the first `count` of the held-out part.
  std::vector<int64_t> val_batch(int64_t count) const;

  // Tokens of windows (absolute indices) as row-major (n, T + 1).
  std::vector<int32_t> read_windows(const std::vector<int64_t>& windows) const;

 private:
  const std::vector<int64_t>& permutation(int64_t epoch);
  const TokenSource& source_;
  int64_t context_, total_, train_, val_;
  uint64_t seed_;
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;
};

// The contiguous share [begin, end) of n items for rank r of `size`.
inline void share(int64_t n, int rank, int size, int64_t* begin, int64_t* end) {
  *begin = n * rank / size;
  *end = n * (rank + 1) / size;
}

}  // namespace conflux::trainer
