// Distributed exact and near-duplicate removal (see dedup.h for the protocol).
#include "conflux/core/error.h"
#include "conflux/core/log.h"
#include "conflux/core/rng.h"
#include "conflux/dataplane/dedup.h"
#include "conflux/dataplane/distributed.h"

#include "parallel.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_map>

namespace conflux::dataplane {

namespace {

int owner_of(int64_t row, const std::vector<int64_t>& bounds) {
  auto it = std::upper_bound(bounds.begin(), bounds.end(), row);
  return static_cast<int>(it - bounds.begin()) - 1;
}

template <typename T>
void append_pod(std::vector<uint8_t>& buf, const T& v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  buf.insert(buf.end(), p, p + sizeof(T));
}

template <typename T>
std::vector<T> as_pods(const std::vector<uint8_t>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

// Sends row ids to be dropped to their owner ranks; returns keep flags for local rows.
std::vector<uint8_t> apply_drops(Communicator& comm, const std::vector<int64_t>& drops,
                                 const std::vector<int64_t>& row_ids, const std::vector<int64_t>& bounds) {
  std::vector<int64_t> mine;
  if (comm.size() == 1) {
    mine = drops;
  } else {
    std::vector<std::vector<uint8_t>> send(static_cast<size_t>(comm.size()));
    for (int64_t g : drops) append_pod(send[static_cast<size_t>(owner_of(g, bounds))], g);
    std::vector<size_t> counts;
    mine = as_pods<int64_t>(comm.alltoallv_bytes(send, &counts));
  }
  std::sort(mine.begin(), mine.end());
  std::vector<uint8_t> keep(row_ids.size(), 1);
  for (size_t i = 0; i < row_ids.size(); ++i)
    if (std::binary_search(mine.begin(), mine.end(), row_ids[i])) keep[i] = 0;
  return keep;
}

struct RowPair {
  int64_t first, second;
  bool operator<(const RowPair& o) const { return first != o.first ? first < o.first : second < o.second; }
  bool operator==(const RowPair& o) const { return first == o.first && second == o.second; }
};

struct UnionFind {
  std::unordered_map<int64_t, int64_t> parent;
  int64_t find(int64_t x) {
    auto it = parent.find(x);
    if (it == parent.end()) {
      parent[x] = x;
      return x;
    }
    int64_t root = x;
    while (parent[root] != root) root = parent[root];
    while (parent[x] != root) {
      int64_t next = parent[x];
      parent[x] = root;
      x = next;
    }
    return root;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent[b] = a;  // the root is always the lowest row id of the component
  }
};

}  // namespace

std::vector<uint8_t> exact_dedup(Communicator& comm, const std::vector<int64_t>& row_ids,
                                 const std::vector<std::string_view>& content,
                                 const std::vector<int64_t>& bounds, int threads) {
  struct Entry {
    uint64_t hi, lo;
    int64_t row;
  };
  const size_t n = static_cast<size_t>(comm.size());
  CONFLUX_CHECK(content.size() == row_ids.size(), "exact dedup: {} records for {} row ids", content.size(),
                row_ids.size());
  // The records' hashes, on the worker threads (each hash depends on its record alone).
  std::vector<Entry> entries(row_ids.size());
  constexpr size_t kTask = 16384;
  parallel_for((entries.size() + kTask - 1) / kTask, worker_threads(threads), [&](size_t t) {
    const size_t e = std::min(entries.size(), (t + 1) * kTask);
    for (size_t i = t * kTask; i < e; ++i) {
      Hash128 h = hash128(content[i].data(), content[i].size());
      entries[i] = Entry{h.hi, h.lo, row_ids[i]};
    }
  });
  if (n > 1) {
    std::vector<std::vector<uint8_t>> send(n);
    for (auto& s : send) s.reserve(row_ids.size() / n * sizeof(Entry) + 64);
    for (const Entry& e : entries) append_pod(send[e.lo % n], e);
    std::vector<size_t> counts;
    entries = as_pods<Entry>(comm.alltoallv_bytes(send, &counts));
  }
  // Hashes I own, partitioned by their top 8 bits (stable), then one small open-addressing table
  // per partition (it stays in cache): each hash keeps its lowest row; every other row with the
  // same hash is dropped. Independent of the order entries arrive in.
  constexpr int kPartBits = 8;
  constexpr size_t kParts = size_t{1} << kPartBits;
  std::vector<uint32_t> start(kParts + 1, 0);
  for (const Entry& e : entries) ++start[(e.hi >> (64 - kPartBits)) + 1];
  for (size_t p = 0; p < kParts; ++p) start[p + 1] += start[p];
  CONFLUX_CHECK(entries.size() < (size_t{1} << 32), "exact dedup: {} hashes on one rank", entries.size());
  std::vector<Entry> parted(entries.size());  // entries grouped by partition, in arrival order
  {
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (const Entry& e : entries) parted[fill[e.hi >> (64 - kPartBits)]++] = e;
  }
  entries.clear();
  entries.shrink_to_fit();
  struct Slot {
    uint64_t lo;
    int64_t idx;  // into parted; -1 = empty
  };
  std::vector<Slot> table;
  std::vector<int64_t> drops;
  for (size_t p = 0; p < kParts; ++p) {
    const uint32_t b = start[p], e_ = start[p + 1];
    if (b == e_) continue;
    size_t cap = 16;
    while (cap < 2 * static_cast<size_t>(e_ - b)) cap <<= 1;
    table.assign(cap, Slot{0, -1});
    for (uint32_t k = b; k < e_; ++k) {
      const Entry& e = parted[k];
      size_t h = static_cast<size_t>(e.lo ^ (e.hi >> 7)) & (cap - 1);
      while (true) {
        Slot& sl = table[h];
        if (sl.idx < 0) {
          sl = Slot{e.lo, static_cast<int64_t>(k)};
          break;
        }
        if (sl.lo == e.lo) {
          const Entry& kept = parted[static_cast<size_t>(sl.idx)];
          if (kept.hi == e.hi) {
            if (e.row < kept.row) {
              drops.push_back(kept.row);
              sl.idx = static_cast<int64_t>(k);
            } else {
              drops.push_back(e.row);
            }
            break;
          }
        }
        h = (h + 1) & (cap - 1);
      }
    }
  }
  return apply_drops(comm, drops, row_ids, bounds);
}

std::vector<uint8_t> near_dedup(Communicator& comm, const DedupRecords& recs, const MinHashParams& p,
                                const std::vector<int64_t>& bounds, NearDedupStats* stats) {
  const size_t nr = static_cast<size_t>(comm.size());
  const int m = p.bands * p.rows;
  const double threshold = p.effective_threshold();
  // 1. Signatures -> band keys -> owner ranks.
  struct KeyRow {
    uint64_t key;
    int64_t row;
  };
  std::vector<std::vector<uint8_t>> send(nr);
  std::vector<uint32_t> sig(static_cast<size_t>(m));
  for (size_t i = 0; i < recs.row_ids.size(); ++i) {
    auto sh = shingle_set(recs.data[i], recs.sizes[i], p.shingle);
    minhash_signature(sh, p, sig.data());
    for (int b = 0; b < p.bands; ++b) {
      uint64_t key = hash64(sig.data() + b * p.rows, static_cast<size_t>(p.rows) * 4, static_cast<uint64_t>(b));
      append_pod(send[key % nr], KeyRow{key, recs.row_ids[i]});
    }
  }
  std::vector<size_t> counts;
  auto keyrows = as_pods<KeyRow>(comm.alltoallv_bytes(send, &counts));
  send.assign(nr, {});
  std::sort(keyrows.begin(), keyrows.end(),
            [](const KeyRow& a, const KeyRow& b) { return a.key != b.key ? a.key < b.key : a.row < b.row; });

  // 2. Candidate pairs from buckets.
  std::vector<RowPair> pairs;
  for (size_t i = 0; i < keyrows.size();) {
    size_t j = i;
    while (j < keyrows.size() && keyrows[j].key == keyrows[i].key) ++j;
    size_t sz = j - i;
    if (sz >= 2) {
      if (static_cast<int64_t>(sz) <= p.max_bucket) {
        for (size_t a = i; a < j; ++a)
          for (size_t b = a + 1; b < j; ++b)
            if (keyrows[a].row != keyrows[b].row) pairs.push_back({keyrows[a].row, keyrows[b].row});
      } else {
        for (size_t b = i + 1; b < j; ++b)
          if (keyrows[i].row != keyrows[b].row) pairs.push_back({keyrows[i].row, keyrows[b].row});
      }
    }
    i = j;
  }
  keyrows.clear();
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());

  // 3. Route each pair to the owner of b (pairs from different buckets may repeat across ranks;
  //    the owner of b deduplicates again).
  for (auto& pr : pairs) {
    append_pod(send[static_cast<size_t>(owner_of(pr.second, bounds))], pr);
  }
  pairs.clear();
  auto at_b = as_pods<RowPair>(comm.alltoallv_bytes(send, &counts));
  send.assign(nr, {});
  std::sort(at_b.begin(), at_b.end());
  at_b.erase(std::unique(at_b.begin(), at_b.end()), at_b.end());
  std::unordered_map<int64_t, size_t> local_index;
  for (size_t i = 0; i < recs.row_ids.size(); ++i) local_index[recs.row_ids[i]] = i;
  // 4. Owner of b sends (a, b, |S_b|, S_b) to the owner of a.
  std::unordered_map<int64_t, std::vector<uint64_t>> cache;
  auto shingles_of = [&](int64_t row) -> const std::vector<uint64_t>& {
    auto it = cache.find(row);
    if (it != cache.end()) return it->second;
    size_t i = local_index.at(row);
    return cache.emplace(row, shingle_set(recs.data[i], recs.sizes[i], p.shingle)).first->second;
  };
  for (auto& pr : at_b) {
    const auto& s = shingles_of(pr.second);
    auto& buf = send[static_cast<size_t>(owner_of(pr.first, bounds))];
    append_pod(buf, pr.first);
    append_pod(buf, pr.second);
    append_pod(buf, static_cast<uint64_t>(s.size()));
    const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
    buf.insert(buf.end(), bytes, bytes + s.size() * 8);
  }
  int64_t candidates = static_cast<int64_t>(at_b.size());
  at_b.clear();
  auto verify = comm.alltoallv_bytes(send, &counts);
  send.assign(nr, {});
  cache.clear();
  // 5. Owner of a computes the exact Jaccard similarity.
  std::vector<RowPair> edges;
  std::vector<uint64_t> sb;
  for (size_t pos = 0; pos < verify.size();) {
    int64_t a, b;
    uint64_t len;
    std::memcpy(&a, &verify[pos], 8);
    std::memcpy(&b, &verify[pos + 8], 8);
    std::memcpy(&len, &verify[pos + 16], 8);
    sb.resize(len);
    std::memcpy(sb.data(), &verify[pos + 24], len * 8);
    pos += 24 + len * 8;
    if (jaccard(shingles_of(a), sb) >= threshold) edges.push_back({a, b});
  }
  verify.clear();
  cache.clear();
  // 6. Every rank gathers all edges and runs union-find; the root is the lowest row id.
  std::vector<uint8_t> mine(edges.size() * 16);
  if (!edges.empty()) std::memcpy(mine.data(), edges.data(), mine.size());
  std::vector<size_t> sizes;
  auto all_edges = as_pods<RowPair>(allgather_bytes(comm, mine, &sizes));
  std::sort(all_edges.begin(), all_edges.end());
  UnionFind uf;
  for (auto& e : all_edges) uf.unite(e.first, e.second);
  std::vector<uint8_t> keep(recs.row_ids.size(), 1);
  int64_t dropped = 0, clusters = 0;
  for (auto& kv : uf.parent) {
    if (uf.find(kv.first) == kv.first) ++clusters;
  }
  for (size_t i = 0; i < recs.row_ids.size(); ++i) {
    int64_t g = recs.row_ids[i];
    if (uf.parent.count(g) && uf.find(g) != g) {
      keep[i] = 0;
      ++dropped;
    }
  }
  std::vector<int64_t> st = {candidates, static_cast<int64_t>(edges.size()), dropped};
  allreduce_sum(comm, st);
  if (stats) {
    stats->candidates = st[0];
    stats->verified = st[1];
    stats->dropped = st[2];
    stats->clusters = clusters;
  }
  return keep;
}

}  // namespace conflux::dataplane
