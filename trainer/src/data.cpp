// Token windows, shuffling and sampling (see data.h).
#include "conflux/trainer/data.h"

#include "conflux/core/communicator.h"
#include "conflux/core/error.h"
#include "conflux/core/rng.h"

#ifdef CONFLUX_TRAINER_HAVE_DATAPLANE
#include "conflux/dataplane/dataset.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

namespace conflux::trainer {

std::vector<int32_t> VectorTokenSource::read(int64_t first, int64_t count) const {
  if (first < 0 || count < 0 || first + count > num_tokens())
    CONFLUX_THROW(DataError, "token range [{}, {}) outside 0..{}", first, first + count, num_tokens());
  return std::vector<int32_t>(tokens_.begin() + first, tokens_.begin() + first + count);
}

#ifdef CONFLUX_TRAINER_HAVE_DATAPLANE
namespace {
class DatasetTokenSource final : public TokenSource {
 public:
  explicit DatasetTokenSource(dataplane::Dataset ds) : ds_(std::move(ds)), n_(ds_.num_tokens()) {}
  int64_t num_tokens() const override { return n_; }
  std::vector<int32_t> read(int64_t first, int64_t count) const override {
    return ds_.read_token_stream(first, count);
  }

 private:
  dataplane::Dataset ds_;
  int64_t n_;
};
}  // namespace

std::unique_ptr<TokenSource> open_token_dataset(const std::string& dir, int64_t* vocab_size,
                                                std::string* manifest_sha256) {
  dataplane::OpenOptions options;
  options.verify_checksums = false;  // check_token_dataset verifies, each shard on one rank
  dataplane::Dataset ds = dataplane::Dataset::open(dir, options);
  const auto& tok = ds.manifest().tokenizer;
  if (vocab_size) {
    if (!tok.is_object() || !tok.contains("vocab_size"))
      CONFLUX_THROW(DataError, "{}/manifest.json: no tokenizer.vocab_size (not a tokens dataset?)", dir);
    *vocab_size = tok.at("vocab_size").get<int64_t>();
  }
  if (manifest_sha256) *manifest_sha256 = dataplane::sha256_file(dir + "/manifest.json");
  return std::make_unique<DatasetTokenSource>(std::move(ds));
}
namespace {

// "" when every token id of shard s lies in [0, limit), else the error naming the first one.
std::string check_token_ids(const dataplane::Dataset& ds, size_t s, int64_t limit) {
  const auto& starts = ds.shard_row_starts();
  const auto t = ds.read_tokens(starts[s], starts[s + 1]);
  // One pass, vectorised: as unsigned, a negative id is larger than any limit.
  uint32_t top = 0;
  for (int32_t v : t.values) top = std::max(top, static_cast<uint32_t>(v));
  if (top < static_cast<uint64_t>(limit)) return "";
  const auto bad = std::find_if(t.values.begin(), t.values.end(),
                                [&](int32_t v) { return static_cast<uint32_t>(v) >= static_cast<uint64_t>(limit); });
  const auto pos = static_cast<int64_t>(bad - t.values.begin());
  const auto row = static_cast<int64_t>(std::upper_bound(t.offsets.begin(), t.offsets.end(), pos) - t.offsets.begin()) - 1;
  return fmt::format("{}/{}: token id {} at row {} of the shard (dataset row {}) is outside the model's vocabulary "
                     "[0, {}) (model.vocab_size); the dataset was tokenized for another vocabulary or is corrupt",
                     ds.dir(), ds.manifest().shards[s].file, *bad, row, starts[s] + row, limit);
}

}  // namespace

void check_token_dataset(const std::string& dir, const DataCheckOptions& options, Communicator& world) {
  dataplane::OpenOptions open;
  open.verify_checksums = false;
  const dataplane::Dataset ds = dataplane::Dataset::open(dir, open);
  std::vector<int64_t> mine;
  for (int64_t s = world.rank(); s < ds.num_shards(); s += world.size()) mine.push_back(s);
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  int64_t first_bad = kNone;
  std::string why;
  auto check = [&](int64_t s, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      first_bad = s;
      why = e.message();
    }
  };
  if (options.checksums) {
    // All of this rank's shards hashed together (several files in SIMD lanes per thread); only
    // after a mismatch are they re-checked one by one to find the first.
    check(0, [&] { ds.verify_shards(mine, 0); });
    if (first_bad != kNone) {
      first_bad = kNone;
      for (int64_t s : mine) {
        check(s, [&] { ds.verify_shard(s); });
        if (first_bad != kNone) break;
      }
    }
  }
  for (size_t i = 0; i < mine.size() && first_bad == kNone && options.vocab_limit > 0; ++i) {
    const int64_t s = mine[i];
    check(s, [&] {
      why = check_token_ids(ds, static_cast<size_t>(s), options.vocab_limit);
      if (!why.empty()) first_bad = s;
    });
  }
  // Agree on the first failing shard; its rank sends the message so every rank throws the same.
  world.allreduce(&first_bad, 1, DType::I64, ReduceOp::Min);
  if (first_bad == kNone) return;
  const int owner = static_cast<int>(first_bad % world.size());
  int64_t len = world.rank() == owner ? static_cast<int64_t>(why.size()) : 0;
  world.broadcast(&len, 1, DType::I64, owner);
  why.resize(static_cast<size_t>(len));
  world.broadcast(why.data(), static_cast<size_t>(len), DType::U8, owner);
  CONFLUX_THROW(DataError, "{}", why);
}
#else
std::unique_ptr<TokenSource> open_token_dataset(const std::string& dir, int64_t*, std::string*) {
  CONFLUX_THROW(UsageError, "cannot read dataset {}: this build has no dataplane library", dir);
}

void check_token_dataset(const std::string& dir, const DataCheckOptions&, Communicator&) {
  CONFLUX_THROW(UsageError, "cannot read dataset {}: this build has no dataplane library", dir);
}
#endif

WindowSplit split_windows(int64_t num_tokens, int64_t context, double val_fraction) {
  WindowSplit s;
  s.total = (num_tokens - 1) / context;
  if (s.total < 2)
    CONFLUX_THROW(DataError, "dataset has {} tokens: fewer than two windows of {} + 1 tokens",
                  num_tokens, context);
  s.val = val_fraction > 0 ? std::max<int64_t>(1, static_cast<int64_t>(std::floor(val_fraction * s.total))) : 0;
  s.train = s.total - s.val;
  if (s.train < 1) CONFLUX_THROW(ConfigError, "data.val_fraction = {} leaves no training windows", val_fraction);
  return s;
}

WindowSampler::WindowSampler(const TokenSource& source, int64_t context, double val_fraction,
                             uint64_t seed)
    : source_(source), context_(context), seed_(seed) {
  const WindowSplit s = split_windows(source.num_tokens(), context, val_fraction);
  total_ = s.total;
  val_ = s.val;
  train_ = s.train;
}

const std::vector<int64_t>& WindowSampler::permutation(int64_t epoch) {
  if (epoch != perm_epoch_) {
    perm_.resize(train_);
    std::iota(perm_.begin(), perm_.end(), 0);
    Stream rng(seed_, "shuffle", static_cast<uint64_t>(epoch));
    for (int64_t i = train_ - 1; i > 0; --i)  // Fisher-Yates
      std::swap(perm_[i], perm_[rng.below(static_cast<uint64_t>(i + 1))]);
    perm_epoch_ = epoch;
  }
  return perm_;
}

std::vector<int64_t> WindowSampler::next_batch(int64_t global_batch, DataPosition* pos) {
  std::vector<int64_t> out;
  out.reserve(global_batch);
  while (static_cast<int64_t>(out.size()) < global_batch) {
    if (pos->position >= train_) {
      ++pos->epoch;
      pos->position = 0;
    }
    out.push_back(permutation(pos->epoch)[pos->position++]);
  }
  return out;
}

std::vector<int64_t> WindowSampler::poisson_batch(double q, RandomSource& rng) const {
  std::vector<int64_t> out;
  for (int64_t w = 0; w < train_; ++w)
    if (rng.bernoulli(q)) out.push_back(w);
  return out;
}

std::vector<int64_t> WindowSampler::val_batch(int64_t count) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < std::min(count, val_); ++i) out.push_back(train_ + i);
  return out;
}

std::vector<int32_t> WindowSampler::read_windows(const std::vector<int64_t>& windows) const {
  std::vector<int32_t> out;
  out.reserve(windows.size() * (context_ + 1));
  for (int64_t w : windows) {
    auto t = source_.read(w * context_, context_ + 1);
    out.insert(out.end(), t.begin(), t.end());
  }
  return out;
}

}  // namespace conflux::trainer
