// Dataset reader: validates a dataset directory on open and reads global row ranges across
// shards with HDF5 hyperslabs.
#include "conflux/dataplane/dataset.h"

#include "h5.h"
#include "parallel.h"
#include "sha256_mb.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

namespace conflux::dataplane {

namespace {

struct ShardState {
  std::string path;
  h5::Handle file;
  std::map<std::string, h5::Handle> datasets;
  std::vector<int64_t> field_values;  // per field: number of values (ragged) or rows
};

}  // namespace

struct Dataset::Impl {
  std::string dir;
  Manifest manifest;
  std::vector<int64_t> row_starts;
  std::vector<ShardState> shards;

  hid_t dataset(size_t s, const std::string& name) {
    auto& st = shards[s];
    auto it = st.datasets.find(name);
    if (it != st.datasets.end()) return it->second.get();
    if (H5Lexists(st.file, name.c_str(), H5P_DEFAULT) <= 0)
      CONFLUX_THROW(DataError, "{}: dataset /{} is missing (schema: {})", st.path, name,
                    manifest.schema.describe());
    // No chunk cache: reads here are large and sequential, and a chunk that is not cached is
    // read straight into the caller's buffer (with the default 1 MiB cache, each 1 MiB chunk went
    // through the cache and was copied once more).
    h5::Handle dapl(H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), "{}: dataset /{}", st.path, name),
                    h5::Handle::Kind::Plist);
    H5_CHECK(H5Pset_chunk_cache(dapl, 0, 0, 1.0), "{}: dataset /{}", st.path, name);
    hid_t id = H5_CHECK(H5Dopen2(st.file, name.c_str(), dapl), "{}: dataset /{}", st.path, name);
    return st.datasets.emplace(name, h5::Handle(id, h5::Handle::Kind::Dataset)).first->second.get();
  }

  // Reads elements [begin, end) (rows for 2-D) of a dataset into dst.
  void read_range(size_t s, const std::string& name, hid_t memtype, int64_t begin, int64_t end,
                  int64_t row_width, void* dst) {
    if (end <= begin) return;
    auto& st = shards[s];
    hid_t ds = dataset(s, name);
    auto what = fmt::format("{}: dataset /{} rows [{}, {})", st.path, name, begin, end);
    h5::Handle fspace(H5_CHECK(H5Dget_space(ds), "{}", what), h5::Handle::Kind::Dataspace);
    int rank = H5Sget_simple_extent_ndims(fspace);
    hsize_t start[2] = {static_cast<hsize_t>(begin), 0};
    hsize_t count[2] = {static_cast<hsize_t>(end - begin), static_cast<hsize_t>(row_width)};
    H5_CHECK(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr), "{}", what);
    h5::Handle mspace(H5_CHECK(H5Screate_simple(rank, count, nullptr), "{}", what),
                      h5::Handle::Kind::Dataspace);
    H5_CHECK(H5Dread(ds, memtype, mspace, fspace, H5P_DEFAULT, dst), "{}", what);
  }

  void validate_shard(size_t s) {
    auto& st = shards[s];
    const ShardInfo& info = manifest.shards[s];
    const Schema& schema = manifest.schema;
    st.field_values.assign(schema.size(), 0);
    for (size_t f = 0; f < schema.size(); ++f) {
      const Field& fd = schema[f];
      hid_t ds = dataset(s, fd.name);
      auto what = fmt::format("{}: dataset /{}", st.path, fd.name);
      h5::Handle type(H5_CHECK(H5Dget_type(ds), "{}", what), h5::Handle::Kind::Datatype);
      if (!h5::type_matches(type, fd.dtype()))
        CONFLUX_THROW(DataError, "{}: element type does not match role {} ({} expected); schema mismatch "
                      "between the manifest and this shard", what, role_name(fd.role), dtype_name(fd.dtype()));
      h5::Handle space(H5_CHECK(H5Dget_space(ds), "{}", what), h5::Handle::Kind::Dataspace);
      hsize_t dims[2] = {0, 0};
      int rank = H5_CHECK(H5Sget_simple_extent_ndims(space), "{}", what);
      int want_rank = fd.role == Role::Features ? 2 : 1;
      if (rank != want_rank)
        CONFLUX_THROW(DataError, "{}: has rank {}, role {} needs rank {} (schema mismatch)", what, rank,
                      role_name(fd.role), want_rank);
      H5_CHECK(H5Sget_simple_extent_dims(space, dims, nullptr), "{}", what);
      if (fd.ragged()) {
        std::string oname = fd.offsets_name();
        hid_t ods = dataset(s, oname);
        auto owhat = fmt::format("{}: dataset /{}", st.path, oname);
        h5::Handle otype(H5_CHECK(H5Dget_type(ods), "{}", owhat), h5::Handle::Kind::Datatype);
        if (!h5::type_matches(otype, DType::I64))
          CONFLUX_THROW(DataError, "{}: offsets must be int64", owhat);
        h5::Handle ospace(H5_CHECK(H5Dget_space(ods), "{}", owhat), h5::Handle::Kind::Dataspace);
        hsize_t odims[2] = {0, 0};
        if (H5Sget_simple_extent_ndims(ospace) != 1)
          CONFLUX_THROW(DataError, "{}: offsets must be 1-D", owhat);
        H5_CHECK(H5Sget_simple_extent_dims(ospace, odims, nullptr), "{}", owhat);
        if (static_cast<int64_t>(odims[0]) != info.rows + 1)
          CONFLUX_THROW(DataError, "{}: has {} entries, expected rows + 1 = {} (manifest says {} rows)", owhat,
                        odims[0], info.rows + 1, info.rows);
        int64_t first = -1, last = -1;
        read_range(s, oname, H5T_NATIVE_INT64, 0, 1, 1, &first);
        read_range(s, oname, H5T_NATIVE_INT64, info.rows, info.rows + 1, 1, &last);
        if (first != 0 || last != static_cast<int64_t>(dims[0]))
          CONFLUX_THROW(DataError, "{}: offsets run from {} to {} but must run from 0 to {} (the length of /{})",
                        owhat, first, last, dims[0], fd.name);
        st.field_values[f] = static_cast<int64_t>(dims[0]);
      } else {
        if (static_cast<int64_t>(dims[0]) != info.rows)
          CONFLUX_THROW(DataError, "{}: has {} rows, the manifest says {}", what, dims[0], info.rows);
        if (fd.role == Role::Features && static_cast<int64_t>(dims[1]) != fd.dim)
          CONFLUX_THROW(DataError, "{}: has {} columns, the schema says {} (schema mismatch between shards)",
                        what, dims[1], fd.dim);
        st.field_values[f] = info.rows;
      }
    }
  }

  void check_range(int64_t begin, int64_t end) const {
    int64_t n = row_starts.back();
    if (begin < 0 || end < begin || end > n)
      CONFLUX_THROW(DataError, "{}: row range [{}, {}) is outside the dataset's {} rows", dir, begin, end, n);
  }

  std::vector<int64_t> read_i64(size_t f, int64_t begin, int64_t end) {
    Column c;
    read_field(f, begin, end, c);
    std::vector<int64_t> out(c.data.size() / 8);
    std::memcpy(out.data(), c.data.data(), c.data.size());
    return out;
  }

  // Appends rows [begin, end) of field f to `out` (ragged offsets continue from out.offsets.back()).
  void read_field(size_t f, int64_t begin, int64_t end, Column& out, bool offsets_only = false) {
    const Field& fd = manifest.schema[f];
    size_t es = fd.element_size();
    auto s_it = std::upper_bound(row_starts.begin(), row_starts.end(), begin);
    size_t s = static_cast<size_t>(s_it - row_starts.begin()) - 1;
    const size_t first = s;
    if (fd.ragged() && !offsets_only) {
      // Size the output once: the offsets of every shard in the range are read first, so the
      // values are read straight into their place with no reallocation and copy as shards add up.
      int64_t total = 0;
      for (size_t k = first; k < shards.size() && row_starts[k] < end; ++k) {
        int64_t lb = std::max(begin, row_starts[k]) - row_starts[k];
        int64_t le = std::min(end, row_starts[k + 1]) - row_starts[k];
        if (le <= lb) continue;
        int64_t a = 0, b = 0;
        read_range(k, fd.offsets_name(), H5T_NATIVE_INT64, lb, lb + 1, 1, &a);
        read_range(k, fd.offsets_name(), H5T_NATIVE_INT64, le, le + 1, 1, &b);
        if (b > a) total += b - a;
      }
      out.data.reserve(out.data.size() + static_cast<size_t>(total) * es);
    }
    out.offsets.reserve(out.offsets.size() + static_cast<size_t>(std::max<int64_t>(0, end - begin)));
    for (; s < shards.size() && row_starts[s] < end; ++s) {
      int64_t lb = std::max(begin, row_starts[s]) - row_starts[s];
      int64_t le = std::min(end, row_starts[s + 1]) - row_starts[s];
      if (le <= lb) continue;
      if (fd.ragged()) {
        std::vector<int64_t> off(static_cast<size_t>(le - lb + 1));
        std::string oname = fd.offsets_name();
        read_range(s, oname, H5T_NATIVE_INT64, lb, le + 1, 1, off.data());
        for (size_t i = 0; i + 1 < off.size(); ++i) {
          if (off[i + 1] < off[i] || off[i] < 0 || off[i + 1] > shards[s].field_values[f])
            CONFLUX_THROW(DataError,
                          "{}: dataset /{}: offsets not monotone within [0, {}] at row {} ({} then {})",
                          shards[s].path, oname, shards[s].field_values[f], lb + static_cast<int64_t>(i),
                          off[i], off[i + 1]);
        }
        if (!offsets_only) {
          size_t old = out.data.size();
          out.data.resize(old + static_cast<size_t>(off.back() - off.front()) * es);
          read_range(s, fd.name, h5::native_type(fd.dtype()), off.front(), off.back(), 1, out.data.data() + old);
        }
        int64_t base = out.offsets.back() - off.front();
        for (size_t i = 1; i < off.size(); ++i) out.offsets.push_back(base + off[i]);
      } else {
        size_t w = static_cast<size_t>(fd.row_width());
        size_t old = out.data.size();
        out.data.resize(old + static_cast<size_t>(le - lb) * w * es);
        read_range(s, fd.name, h5::native_type(fd.dtype()), lb, le, static_cast<int64_t>(w), out.data.data() + old);
      }
    }
  }

  size_t field_index(const std::string& field, Role role) const {
    size_t f = field.empty() ? manifest.schema.require_role(role) : manifest.schema.require(field);
    if (manifest.schema[f].role != role)
      CONFLUX_THROW(DataError, "{}: field '{}' has role {}, not {}", dir, manifest.schema[f].name,
                    role_name(manifest.schema[f].role), role_name(role));
    return f;
  }
};

Dataset Dataset::open(const std::string& dir, const OpenOptions& options) {
  h5::quiet();
  struct stat sb;
  if (::stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode))
    CONFLUX_THROW(DataError, "dataset directory '{}' does not exist or is not a directory", dir);
  Dataset d;
  d.impl_ = std::make_shared<Impl>();
  Impl& im = *d.impl_;
  im.dir = dir;
  im.manifest = Manifest::load(dir);
  im.row_starts.push_back(0);
  for (auto& s : im.manifest.shards) im.row_starts.push_back(im.row_starts.back() + s.rows);
  im.shards.resize(im.manifest.shards.size());
  for (size_t s = 0; s < im.shards.size(); ++s) {
    const ShardInfo& info = im.manifest.shards[s];
    auto& st = im.shards[s];
    st.path = dir + "/" + info.file;
    if (::stat(st.path.c_str(), &sb) != 0)
      CONFLUX_THROW(DataError, "{}: shard file is missing (listed in {}/{})", st.path, dir, kManifestFile);
    if (sb.st_size != info.bytes)
      CONFLUX_THROW(DataError, "{}: shard is {} bytes but the manifest says {} (truncated or replaced)",
                    st.path, static_cast<int64_t>(sb.st_size), info.bytes);
  }
  if (options.verify_checksums) d.verify_all();
  for (size_t s = 0; s < im.shards.size(); ++s) {
    auto& st = im.shards[s];
    if (H5Fis_hdf5(st.path.c_str()) <= 0) {
      h5::error_stack();
      CONFLUX_THROW(DataError, "{}: not a readable HDF5 file (corrupt or truncated)", st.path);
    }
    st.file = h5::Handle(H5_CHECK(H5Fopen(st.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                                  "{}: open shard (corrupt or truncated HDF5?)", st.path),
                         h5::Handle::Kind::File);
    im.validate_shard(s);
  }
  return d;
}

const std::string& Dataset::dir() const { return impl_->dir; }
const Manifest& Dataset::manifest() const { return impl_->manifest; }
int64_t Dataset::num_rows() const { return impl_->row_starts.back(); }
int64_t Dataset::num_shards() const { return static_cast<int64_t>(impl_->shards.size()); }
const std::vector<int64_t>& Dataset::shard_row_starts() const { return impl_->row_starts; }

namespace {

void check_checksum(const ShardInfo& info, const std::string& path, const std::string& got) {
  if (got != info.sha256)
    CONFLUX_THROW(DataError, "{}: checksum mismatch: sha256 is {}, the manifest says {} (corrupt or modified shard)",
                  path, got, info.sha256);
}

}  // namespace

void Dataset::verify_shard(int64_t index) const {
  const ShardInfo& info = impl_->manifest.shards.at(static_cast<size_t>(index));
  std::string path = impl_->dir + "/" + info.file;
  check_checksum(info, path, sha256_file(path));
}

void Dataset::verify_all() const {
  std::vector<int64_t> all(static_cast<size_t>(num_shards()));
  for (int64_t s = 0; s < num_shards(); ++s) all[s] = s;
  verify_shards(all, worker_threads(0));
}

// All listed shards are read and hashed together, several files in SIMD lanes per thread
// (multi-buffer SHA-256); the first failure in list order is reported.
void Dataset::verify_shards(const std::vector<int64_t>& indices, int threads) const {
  std::vector<std::string> paths;
  for (int64_t s : indices) paths.push_back(impl_->dir + "/" + impl_->manifest.shards.at(static_cast<size_t>(s)).file);
  std::vector<std::exception_ptr> errors;
  auto digests = sha256_files(paths, worker_threads(threads), Sha256Isa::Auto, &errors);
  for (size_t i = 0; i < indices.size(); ++i) {
    if (errors[i]) std::rethrow_exception(errors[i]);
    check_checksum(impl_->manifest.shards[static_cast<size_t>(indices[i])], paths[i], digest_hex(digests[i]));
  }
}

Table Dataset::read(int64_t begin, int64_t end, const std::vector<std::string>& fields) const {
  impl_->check_range(begin, end);
  const Schema& schema = impl_->manifest.schema;
  std::vector<size_t> idx;
  if (fields.empty()) {
    for (size_t f = 0; f < schema.size(); ++f) idx.push_back(f);
  } else {
    for (auto& n : fields) idx.push_back(schema.require(n));
  }
  std::vector<Field> sub;
  for (size_t f : idx) sub.push_back(schema[f]);
  Table t{Schema(sub)};
  for (size_t i = 0; i < idx.size(); ++i) impl_->read_field(idx[i], begin, end, t.column(i));
  t.set_rows(end - begin);
  return t;
}

Ragged<int32_t> Dataset::read_tokens(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  size_t f = impl_->field_index(field, Role::Tokens);
  Column c;
  c.offsets.push_back(0);
  impl_->read_field(f, begin, end, c);
  Ragged<int32_t> r;
  r.values.resize(c.data.size() / 4);
  std::memcpy(r.values.data(), c.data.data(), c.data.size());
  r.offsets = std::move(c.offsets);
  return r;
}

std::vector<std::string> Dataset::read_text(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  size_t f = impl_->field_index(field, Role::Text);
  Column c;
  c.offsets.push_back(0);
  impl_->read_field(f, begin, end, c);
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(end - begin));
  for (size_t i = 0; i + 1 < c.offsets.size(); ++i)
    out.emplace_back(reinterpret_cast<const char*>(c.data.data()) + c.offsets[i],
                     static_cast<size_t>(c.offsets[i + 1] - c.offsets[i]));
  return out;
}

Features Dataset::read_features(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  size_t f = impl_->field_index(field, Role::Features);
  Column c;
  impl_->read_field(f, begin, end, c);
  Features out;
  out.dim = impl_->manifest.schema[f].dim;
  out.values.resize(c.data.size() / 4);
  std::memcpy(out.values.data(), c.data.data(), c.data.size());
  return out;
}

std::vector<int64_t> Dataset::read_labels(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  return impl_->read_i64(impl_->field_index(field, Role::Label), begin, end);
}

std::vector<int64_t> Dataset::read_groups(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  return impl_->read_i64(impl_->field_index(field, Role::Group), begin, end);
}

int64_t Dataset::num_tokens(const std::string& field) const {
  size_t f = impl_->field_index(field, Role::Tokens);
  int64_t n = 0;
  for (auto& st : impl_->shards) n += st.field_values[f];
  return n;
}

std::vector<int32_t> Dataset::read_token_stream(int64_t first, int64_t count, const std::string& field) const {
  size_t f = impl_->field_index(field, Role::Tokens);
  int64_t total = num_tokens(field);
  if (first < 0 || count < 0 || first + count > total)
    CONFLUX_THROW(DataError, "{}: token range [{}, {}) is outside the token stream of {} tokens", impl_->dir,
                  first, first + count, total);
  std::vector<int32_t> out(static_cast<size_t>(count));
  int64_t base = 0, pos = first, done = 0;
  const std::string& name = impl_->manifest.schema[f].name;
  for (size_t s = 0; s < impl_->shards.size() && done < count; ++s) {
    int64_t n = impl_->shards[s].field_values[f];
    if (pos < base + n) {
      int64_t lb = pos - base;
      int64_t take = std::min(n - lb, count - done);
      impl_->read_range(s, name, H5T_NATIVE_INT32, lb, lb + take, 1, out.data() + done);
      done += take;
      pos += take;
    }
    base += n;
  }
  return out;
}

std::vector<int64_t> Dataset::token_offsets(int64_t begin, int64_t end, const std::string& field) const {
  impl_->check_range(begin, end);
  size_t f = impl_->field_index(field, Role::Tokens);
  Impl& im = *impl_;
  // Stream position of row `begin`: tokens of earlier shards plus its local offset.
  int64_t start = 0;
  size_t s = 0;
  for (; s < im.shards.size() && im.row_starts[s + 1] <= begin; ++s) start += im.shards[s].field_values[f];
  if (s < im.shards.size()) {
    int64_t local = 0;
    im.read_range(s, im.manifest.schema[f].offsets_name(), H5T_NATIVE_INT64, begin - im.row_starts[s],
                  begin - im.row_starts[s] + 1, 1, &local);
    start += local;
  }
  Column c;
  c.offsets.push_back(start);
  im.read_field(f, begin, end, c, /*offsets_only=*/true);
  return c.offsets;
}

}  // namespace conflux::dataplane
