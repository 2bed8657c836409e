// Block kernels of the noise and augment stages: the Gaussian mechanism and masking on many
// records at once, split into tasks over prepare.threads threads, with exactly the draws of the
// per-record ops (see stages.h).
#include "conflux/dataplane/manifest.h"
#include "fast_random.h"
#include "parallel.h"
#include "stages.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace conflux::dataplane {

// The Gaussian mechanism on chunks of rows (one parallel_for task each), in blocks that stay in
// L1/L2: clip the block's rows, draw the bits of every row (seeded: RowStream(key, row id) exactly
// as apply_features would, so results are the same bit for bit; secure: ChaCha20 under the task's
// own fresh key), then one noise-kernel call per block (per row when dim is odd).
void gaussian_rows(float* x, int64_t rows, int64_t dim, double clip, double sigma, const int64_t* row_ids,
                   const StreamKey* key, int threads) {
  if (rows <= 0 || dim <= 0) return;
  const size_t per = static_cast<size_t>((dim + 1) / 2);  // 64-bit words per row
  // Blocks of about 2048 values: the block (8 KiB) and its random words (8 KiB) stay in L1
  // through the three passes (clip, fill, noise).
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 11) / dim);
  const int64_t chunk = block * 16;
  const float sig = static_cast<float>(sigma);
  parallel_for(static_cast<size_t>((rows + chunk - 1) / chunk), threads, [&](size_t c) {
    std::unique_ptr<ChaChaRandom> sec;
    if (!key) sec = std::make_unique<ChaChaRandom>();
    std::vector<uint64_t> bits(static_cast<size_t>(block) * per);
    const int64_t c1 = std::min(rows, static_cast<int64_t>(c + 1) * chunk);
    for (int64_t r0 = static_cast<int64_t>(c) * chunk; r0 < c1; r0 += block) {
      const int64_t nb = std::min(block, c1 - r0);
      float* xb = x + r0 * dim;
      clip_l2_rows(xb, static_cast<size_t>(nb), static_cast<size_t>(dim), clip);
      if (key) {
        fill_rows(*key, row_ids + r0, static_cast<size_t>(nb), per, bits.data());
      } else {
        sec->fill(bits.data(), static_cast<size_t>(nb) * per);
      }
      if (dim % 2 == 0) {
        add_normal(xb, static_cast<size_t>(nb * dim), bits.data(), sig);
      } else {
        for (int64_t i = 0; i < nb; ++i) add_normal(xb + i * dim, static_cast<size_t>(dim), bits.data() + i * per, sig);
      }
    }
  });
}

void mask_rows(int32_t* tokens, const int64_t* offsets, int64_t rows, const int64_t* row_ids, const StreamKey& key,
               double rate, int threads) {
  if (rate <= 0 || rows <= 0) return;
  const uint64_t threshold =
      rate >= 1 ? (uint64_t{1} << 32) : static_cast<uint64_t>(std::floor(rate * 4294967296.0));
  // Tasks of about kChunk tokens (whole records): each record's draws are fused into its pass.
  constexpr int64_t kChunk = 1 << 18;
  std::vector<int64_t> starts = {0};
  for (int64_t r = 0; r < rows; ++r)
    if (offsets[r + 1] - offsets[starts.back()] >= kChunk) starts.push_back(r + 1);
  if (starts.back() != rows) starts.push_back(rows);
  parallel_for(starts.size() - 1, threads, [&](size_t c) {
    mask_records(tokens, offsets + starts[c], static_cast<size_t>(starts[c + 1] - starts[c]), row_ids + starts[c], key,
                 threshold, kMaskId);
  });
}

}  // namespace conflux::dataplane
