// Plan boundaries, small collective helpers and the np-independent distributed dataset write.
#include "conflux/dataplane/distributed.h"

#include "conflux/core/error.h"
#include "conflux/core/log.h"

#include "lane_hasher.h"
#include "parallel.h"
#include "sha256_mb.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>

namespace conflux::dataplane {

namespace fs = std::filesystem;

namespace {
// A built shard image waiting to be written (and hashed) as shard `index`.
struct ShardImageJob {
  int64_t index = 0, rows = 0;
  ShardImage image;
};
}  // namespace

std::vector<int64_t> balanced_boundaries(const std::vector<int64_t>& cum, int parts, int64_t align) {
  CONFLUX_CHECK(!cum.empty() && parts >= 1 && align >= 1, "bad plan input");
  int64_t n = static_cast<int64_t>(cum.size()) - 1;
  int64_t total = cum.back();
  std::vector<int64_t> b(static_cast<size_t>(parts) + 1, 0);
  b[parts] = n;
  for (int p = 1; p < parts; ++p) {
    // First row whose prefix weight reaches the target, rounded to the nearest aligned row.
    double target = static_cast<double>(total) * p / parts;
    int64_t row = std::lower_bound(cum.begin(), cum.end(), static_cast<int64_t>(target + 0.5)) - cum.begin();
    int64_t lo = (row / align) * align, hi = std::min(n, lo + align);
    int64_t pick = (target - static_cast<double>(cum[lo]) <= static_cast<double>(cum[hi]) - target) ? lo : hi;
    b[p] = std::clamp(pick, b[p - 1], n);
  }
  return b;
}

std::vector<int64_t> broadcast_boundaries(Communicator& comm, std::vector<int64_t> boundaries) {
  boundaries.resize(static_cast<size_t>(comm.size()) + 1);
  comm.broadcast(boundaries.data(), boundaries.size(), DType::I64, 0);
  return boundaries;
}

RankOffset rank_offsets(Communicator& comm, int64_t local_count) {
  RankOffset r;
  r.per_rank.resize(static_cast<size_t>(comm.size()));
  comm.allgather(&local_count, r.per_rank.data(), 1, DType::I64);
  for (int i = 0; i < comm.size(); ++i) {
    if (i < comm.rank()) r.first += r.per_rank[i];
    r.total += r.per_rank[i];
  }
  return r;
}

void allreduce_sum(Communicator& comm, std::vector<int64_t>& values) {
  if (!values.empty()) comm.allreduce(values.data(), values.size(), DType::I64, ReduceOp::Sum);
}
void allreduce_sum(Communicator& comm, std::vector<double>& values) {
  if (!values.empty()) comm.allreduce(values.data(), values.size(), DType::F64, ReduceOp::Sum);
}

std::vector<uint8_t> allgather_bytes(Communicator& comm, const std::vector<uint8_t>& bytes,
                                     std::vector<size_t>* sizes) {
  std::vector<std::vector<uint8_t>> per(static_cast<size_t>(comm.size()), bytes);
  return comm.alltoallv_bytes(per, sizes);
}

namespace {

// Every rank learns whether any rank failed and, if one did, the first failing rank's error (kind
// and message). Ranks that failed rethrow their own error; the others throw the same kind with the
// failing rank's message, so whichever rank reports first (and MPI_Abort ends the job at once)
// names the real cause: a rank's own message may be lost in flight when another rank aborts.
// `before_throw` runs on every rank once a failure is known (e.g. removing a staging directory).
void raise_if_any_failed(Communicator& comm, std::exception_ptr local, const std::string& what,
                         const std::function<void()>& before_throw = {}) {
  int32_t failed = local ? 1 : 0;
  comm.allreduce(&failed, 1, DType::I32, ReduceOp::Sum);
  if (!failed) return;
  std::vector<uint8_t> mine;
  if (local) {
    ErrorKind kind = ErrorKind::Internal;
    std::string text;
    try {
      std::rethrow_exception(local);
    } catch (const Error& e) {
      kind = e.kind();
      text = e.message();
    } catch (const std::exception& e) {
      text = e.what();
    } catch (...) {
      text = "unknown error";
    }
    mine.push_back(static_cast<uint8_t>(kind));
    mine.insert(mine.end(), text.begin(), text.end());
  }
  std::vector<size_t> sizes;
  std::vector<uint8_t> all = allgather_bytes(comm, mine, &sizes);
  if (before_throw) before_throw();
  if (local) std::rethrow_exception(local);
  size_t off = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    if (sizes[r] > 0) {
      auto kind = static_cast<ErrorKind>(all[off]);
      std::string text(reinterpret_cast<const char*>(all.data() + off + 1), sizes[r] - 1);
      throw Error(kind,
                  fmt::format("{} failed on rank {}{}: {}", what, r,
                              failed > 1 ? fmt::format(" (and {} other rank(s))", failed - 1) : "", text),
                  __FILE__, __LINE__);
    }
    off += sizes[r];
  }
  CONFLUX_THROW(InternalError, "{} failed on {} rank(s) but none sent its error", what, failed);
}

}  // namespace

void collective_try(Communicator& comm, const std::string& what, const std::function<void()>& fn) {
  std::exception_ptr err;
  try {
    fn();
  } catch (...) {
    err = std::current_exception();
  }
  raise_if_any_failed(comm, err, what);
}

namespace {

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 8);
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Agrees on failure across ranks: returns normally only if no rank failed; otherwise rank 0
// removes the staging directory and every rank throws (see raise_if_any_failed).
void agree(Communicator& comm, std::exception_ptr local, const std::string& out_dir, const char* what) {
  raise_if_any_failed(comm, local, fmt::format("{} for '{}' (not written)", what, out_dir), [&] {
    if (comm.rank() == 0) remove_staging(out_dir);
  });
}

// The zero-row policy of WriterOptions (see writer.h); `total` is the global row count, so every
// rank decides the same way.
void check_empty_output(Communicator& comm, const std::string& out_dir, int64_t total, const WriterOptions& o) {
  if (total > 0) return;
  if (!o.allow_empty)
    CONFLUX_THROW(DataError,
                  "refusing to write an empty dataset to '{}': {}; nothing was written (to write an empty "
                  "dataset anyway: {})",
                  out_dir, o.empty_reason, o.allow_empty_how);
  // Rank 0 reads the existing manifest (if any); every rank then raises the same error.
  std::exception_ptr err;
  int64_t existing = 0;
  if (comm.rank() == 0) {
    try {
      std::error_code ec;
      if (fs::exists(fs::path(out_dir) / kManifestFile, ec)) existing = Manifest::load(out_dir).num_rows();
    } catch (...) {
      err = std::current_exception();
    }
  }
  agree(comm, err, out_dir, "reading the existing output's manifest");
  comm.broadcast(&existing, 1, DType::I64, 0);
  if (existing > 0)
    CONFLUX_THROW(DataError,
                  "refusing to replace the dataset at '{}' ({} rows) with an empty one ({}); it is unchanged "
                  "(remove it first, or choose another output)",
                  out_dir, existing, o.empty_reason);
}

}  // namespace

Manifest write_distributed(Communicator& comm, const std::string& out_dir, const Table& rows,
                           int64_t rows_per_shard, Manifest manifest, const WriterOptions& options) {
  CONFLUX_CHECK(rows_per_shard >= 1, "rows_per_shard {}", rows_per_shard);
  const int size = comm.size(), rank = comm.rank();
  const auto t0 = std::chrono::steady_clock::now();
  auto ms = [&t0] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  RankOffset off = rank_offsets(comm, rows.rows());
  check_empty_output(comm, out_dir, off.total, options);
  const int64_t nshards = (off.total + rows_per_shard - 1) / rows_per_shard;

  // 1. Route each shard's slice of my rows to the shard's owner: [u64 start][u64 bytes][rows].
  std::vector<std::vector<uint8_t>> send(static_cast<size_t>(size));
  std::map<int64_t, std::pair<int64_t, int64_t>> local;  // shard -> my local row range (self sends)
  for (int64_t g = off.first; g < off.first + rows.rows();) {
    int64_t s = g / rows_per_shard;
    int64_t e = std::min(off.first + rows.rows(), (s + 1) * rows_per_shard);
    if (s % size == rank) {  // stays on this rank: copied straight from `rows` below
      local[s] = {g - off.first, e - off.first};
      g = e;
      continue;
    }
    auto payload = rows.serialize(g - off.first, e - off.first);
    auto& buf = send[static_cast<size_t>(s % size)];
    put_u64(buf, static_cast<uint64_t>(g));
    put_u64(buf, payload.size());
    buf.insert(buf.end(), payload.begin(), payload.end());
    g = e;
  }
  std::vector<size_t> counts;
  std::vector<uint8_t> recv = comm.alltoallv_bytes(send, &counts);
  send.clear();

  // 2. Assemble my shards in row order.
  std::map<int64_t, std::vector<std::pair<uint64_t, std::pair<size_t, size_t>>>> pieces;
  for (size_t pos = 0; pos < recv.size();) {
    uint64_t start = get_u64(&recv[pos]), nbytes = get_u64(&recv[pos + 8]);
    pieces[static_cast<int64_t>(start) / rows_per_shard].push_back({start, {pos + 16, nbytes}});
    pos += 16 + nbytes;
  }

  // 3. Staging directory (rank 0), then every rank writes its shards.
  std::exception_ptr err;
  std::unique_ptr<DatasetWriter> writer;
  if (rank == 0) {
    try {
      prepare_staging(out_dir);
    } catch (...) {
      err = std::current_exception();
    }
  }
  agree(comm, err, out_dir, "creating the staging directory");
  nlohmann::json mine = nlohmann::json::array();
  try {
    writer = std::make_unique<DatasetWriter>(out_dir, manifest.schema, /*create_staging=*/false, options);
    writer->release();  // rank 0 removes or publishes the staging directory
    // Images are built here (HDF5, this thread); up to `threads` workers write and fsync them
    // meanwhile. Hashing: with three or more shards on this rank and SIMD lanes available, one
    // background thread hashes the images in lanes as they are built (a new image joins those in
    // flight); otherwise each worker hashes the image it writes (OpenSSL, one stream, which is
    // faster than one lane). Shard descriptions stay in shard order.
    const size_t threads = static_cast<size_t>(worker_threads(options.threads));
    const int64_t my_shards = rank < nshards ? (nshards - 1 - rank) / size + 1 : 0;
    // Declared in this order so that on an error the hasher stops, then the writes end, before
    // the images they read are freed.
    std::vector<std::unique_ptr<ShardImageJob>> kept;  // each image until written and hashed
    std::vector<std::future<ShardInfo>> writes;
    std::unique_ptr<LaneHasher> hasher;
    if (my_shards >= 3 && preferred_batch() > 1) hasher = std::make_unique<LaneHasher>(static_cast<size_t>(my_shards));
    auto ready = [](const std::future<ShardInfo>& f) {
      return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
    };
    for (int64_t s = rank; s < nshards; s += size) {
      const std::string what = writer->staging() + "/" + shard_file_name(s);
      const int64_t want = std::min(off.total, (s + 1) * rows_per_shard) - s * rows_per_shard;
      ShardImage image;
      auto& list = pieces[s];
      if (list.empty() && local.count(s)) {  // all rows are mine and contiguous: no copy
        CONFLUX_CHECK(local[s].second - local[s].first == want, "shard {} has {} local rows, expected {}", s,
                      local[s].second - local[s].first, want);
        image = shard_image(rows, local[s].first, local[s].second, options, what);
      } else {
        Table t(manifest.schema);
        std::sort(list.begin(), list.end());
        // Pieces from lower ranks come first (their rows precede mine), then mine, then higher.
        bool mine_done = !local.count(s);
        for (auto& p : list) {
          if (!mine_done && static_cast<int64_t>(p.first) > off.first + local[s].first) {
            t.append_range(rows, local[s].first, local[s].second);
            mine_done = true;
          }
          t.append_serialized(recv.data() + p.second.first, p.second.second);
        }
        if (!mine_done) t.append_range(rows, local[s].first, local[s].second);
        CONFLUX_CHECK(t.rows() == want, "shard {} assembled {} rows, expected {}", s, t.rows(), want);
        image = shard_image(t, 0, t.rows(), options, what);
      }
      log::debug("write: shard {} image built ({} bytes) at {:.0f} ms", s, image.size, ms());
      // Bounded memory: at most `threads` writes in flight (and two kernels' lanes of hashing).
      for (;;) {
        const std::future<ShardInfo>* oldest = nullptr;
        size_t in_flight = 0;
        for (const auto& f : writes) {
          if (ready(f)) continue;
          if (!oldest) oldest = &f;
          ++in_flight;
        }
        if (in_flight < threads) break;
        oldest->wait();
      }
      auto job = std::make_unique<ShardImageJob>(ShardImageJob{s, want, std::move(image)});
      const ShardImageJob* j = job.get();
      if (hasher) hasher->add(kept.size(), j->image.data.get(), j->image.size);
      const DatasetWriter* w = writer.get();
      const bool hash_here = !hasher;
      writes.push_back(std::async(std::launch::async, [w, j, hash_here] {
        return hash_here ? w->write_image(j->index, j->rows, j->image)
                         : w->write_image_unhashed(j->index, j->rows, j->image);
      }));
      kept.push_back(std::move(job));
      // Room for two sets of lanes: one hashed while the next is built (the hasher waits for a
      // full set). Never more than this rank's own output, which is in memory anyway.
      if (hasher) hasher->wait_below(2 * hasher->lanes() + 1);
      for (size_t k = 0; k < kept.size(); ++k)
        if (kept[k] && ready(writes[k]) && (!hasher || hasher->hashed(k))) kept[k].reset();
    }
    log::debug("write: all images built at {:.0f} ms", ms());
    const std::vector<Sha256Digest> digests = hasher ? hasher->finish() : std::vector<Sha256Digest>{};
    log::debug("write: hashed at {:.0f} ms", ms());
    for (size_t k = 0; k < writes.size(); ++k) {
      ShardInfo info = writes[k].get();
      if (hasher) info.sha256 = digest_hex(digests[k]);
      int64_t index = static_cast<int64_t>(mine.size()) * size + rank;
      mine.push_back({{"index", index}, {"file", info.file}, {"rows", info.rows}, {"bytes", info.bytes},
                      {"sha256", info.sha256}});
    }
  } catch (...) {
    err = std::current_exception();
  }
  agree(comm, err, out_dir, "writing shards");
  log::debug("write: shards written and fsync'ed on every rank at {:.0f} ms", ms());
  recv.clear();

  // 4. Rank 0 gathers the shard descriptions and publishes.
  std::vector<std::vector<uint8_t>> to_root(static_cast<size_t>(size));
  std::string text = mine.dump();
  to_root[0].assign(text.begin(), text.end());
  std::vector<size_t> sizes;
  std::vector<uint8_t> gathered = comm.alltoallv_bytes(to_root, &sizes);
  if (rank == 0) {
    try {
      std::vector<ShardInfo> shards(static_cast<size_t>(nshards));
      size_t pos = 0;
      for (size_t r = 0; r < sizes.size(); ++r) {
        auto arr = nlohmann::json::parse(gathered.begin() + pos, gathered.begin() + pos + sizes[r]);
        pos += sizes[r];
        for (auto& e : arr)
          shards[e["index"].get<size_t>()] = ShardInfo{e["file"], e["rows"], e["bytes"], e["sha256"]};
      }
      manifest.shards = shards;
      DatasetWriter publisher(out_dir, manifest.schema, /*create_staging=*/false, options);
      publisher.commit(manifest);
    } catch (...) {
      err = std::current_exception();
    }
  }
  agree(comm, err, out_dir, "publishing the dataset");
  log::debug("write: published at {:.0f} ms", ms());
  log::info("wrote {} rows in {} shards to {}", off.total, nshards, out_dir);
  return rank == 0 ? manifest : Manifest{};
}

}  // namespace conflux::dataplane
