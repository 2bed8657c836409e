// Exact and near-duplicate detection across all ranks.
//
// Exact: a 128-bit content hash (XXH3-128 of the record's bytes) per record; (hash, global row)
// pairs are shuffled to the rank owning the hash (hash % ranks) with all-to-all-v; the owner
// keeps the lowest global row of each hash and sends drop decisions back to the rows' ranks.
//
// Near (MinHash-LSH): shingles are the XXH3-64 hashes of every window of `shingle` consecutive
// tokens (a shorter record is one shingle); a signature holds bands*rows minima of 32-bit
// multiply-shift hashes; each band's rows are hashed into a bucket key, and (key, row) pairs are
// shuffled to the key's owner rank. Buckets of at most `max_bucket` rows yield all pairs, larger
// ones pair every member with the bucket's lowest row. Each candidate pair (a < b) is verified by
// the exact Jaccard similarity of the two shingle sets (b's set is sent to a's rank); pairs with
// J >= threshold are edges; every rank gathers the edges, computes connected components
// (union-find) and drops all but the lowest global row of each component. A pair with similarity
// s becomes a candidate with probability 1 - (1 - s^rows)^bands; the S-curve's midpoint is
// about (1/bands)^(1/rows) (0.77 for the default 8 x 8), which is also the default threshold.
// Thread safety: collective calls.
#pragma once

#include "conflux/core/communicator.h"

#include <cstdint>
#include <string_view>
#include <vector>

namespace conflux::dataplane {

struct MinHashParams {
  int bands = 8;
  int rows = 8;
  int shingle = 5;
  double threshold = 0;  // 0: (1/bands)^(1/rows)
  int64_t max_bucket = 32;
  uint64_t seed = 0x6d696e68617368ull;
  double effective_threshold() const;
};

// Records as seen by dedup: global row ids (ascending) and their content as int32 sequences.
struct DedupRecords {
  std::vector<int64_t> row_ids;
  std::vector<const int32_t*> data;
  std::vector<int64_t> sizes;
};

// Sorted unique shingle hashes.
std::vector<uint64_t> shingle_set(const int32_t* tokens, int64_t n, int k);
double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);
void minhash_signature(const std::vector<uint64_t>& shingles, const MinHashParams& p, uint32_t* out);

// Exact dedup over raw bytes per record. Returns keep flags for this rank's records. The records
// are hashed on `threads` threads (0: the default of prepare.threads).
std::vector<uint8_t> exact_dedup(Communicator& comm, const std::vector<int64_t>& row_ids,
                                 const std::vector<std::string_view>& content,
                                 const std::vector<int64_t>& rank_bounds, int threads = 0);

struct NearDedupStats {
  int64_t candidates = 0;   // distinct candidate pairs (global)
  int64_t verified = 0;     // pairs with J >= threshold (global)
  int64_t clusters = 0;     // components of size >= 2
  int64_t dropped = 0;
};
// Near dedup. rank_bounds: global row range owned by each rank (size + 1 values).
std::vector<uint8_t> near_dedup(Communicator& comm, const DedupRecords& recs, const MinHashParams& p,
                                const std::vector<int64_t>& rank_bounds, NearDedupStats* stats);

}  // namespace conflux::dataplane
