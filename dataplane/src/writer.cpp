// Shard files (chunked HDF5, no timestamps, so bytes depend only on the rows) and the atomic
// publish of a dataset directory (core/atomic_file.h: staging dir, rename or RENAME_EXCHANGE,
// fsync of the parent). A shard is
// built in memory (HDF5 core driver), then written with one write() and fsync'ed; its SHA-256 is
// computed from those same bytes while the kernel writes them back, so nothing is read again
// (or, by write_image_unhashed's caller, in SIMD lanes with other shards: lane_hasher.h).
#include "conflux/dataplane/writer.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/log.h"

#include "h5.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace conflux::dataplane {

namespace fs = std::filesystem;

namespace {

void write_array(hid_t file, const std::string& path, const std::string& name, hid_t file_type,
                 hid_t memtype, const void* data, int rank, const hsize_t* dims, size_t elem_size,
                 int64_t chunk_bytes) {
  using h5::Handle;
  auto what = fmt::format("{}: dataset /{}", path, name);
  Handle space(H5_CHECK(H5Screate_simple(rank, dims, nullptr), "{}", what), Handle::Kind::Dataspace);
  Handle dcpl(H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), "{}", what), Handle::Kind::Plist);
  H5_CHECK(H5Pset_obj_track_times(dcpl, 0), "{}", what);
  hsize_t total = 1;
  for (int i = 0; i < rank; ++i) total *= dims[i];
  if (total > 0) {
    hsize_t chunk[2] = {1, 1};
    hsize_t row_elems = rank == 2 ? dims[1] : 1;
    hsize_t rows = std::max<hsize_t>(1, static_cast<hsize_t>(chunk_bytes) / (row_elems * elem_size));
    chunk[0] = std::min<hsize_t>(rows, dims[0]);
    if (rank == 2) chunk[1] = dims[1];
    H5_CHECK(H5Pset_chunk(dcpl, rank, chunk), "{}", what);
    H5_CHECK(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "{}", what);
  }
  // No chunk cache: each whole chunk then goes straight to the file driver (with the default
  // 1 MiB cache a 1 MiB chunk was staged in the cache and copied once more).
  Handle dapl(H5_CHECK(H5Pcreate(H5P_DATASET_ACCESS), "{}", what), Handle::Kind::Plist);
  H5_CHECK(H5Pset_chunk_cache(dapl, 0, 0, 1.0), "{}", what);
  Handle ds(H5_CHECK(H5Dcreate2(file, name.c_str(), file_type, space, H5P_DEFAULT, dcpl, dapl),
                     "{}", what),
            Handle::Kind::Dataset);
  if (total > 0) H5_CHECK(H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "{}", what);
  ds.close_checked(what);
}

void write_int_attr(hid_t file, const std::string& path, const char* name, int64_t value) {
  using h5::Handle;
  auto what = fmt::format("{}: attribute {}", path, name);
  Handle space(H5_CHECK(H5Screate(H5S_SCALAR), "{}", what), Handle::Kind::Dataspace);
  Handle attr(H5_CHECK(H5Acreate2(file, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), "{}", what),
              Handle::Kind::Attribute);
  H5_CHECK(H5Awrite(attr, H5T_NATIVE_INT64, &value), "{}", what);
}

// File image callbacks for the core driver: its buffer is plain malloc memory, and on close it is
// handed to us (`kept`) instead of freed, so the finished file needs no copy.
struct ImageSink {
  void* kept = nullptr;
  size_t capacity = 0;  // bytes of the driver's buffer (its last allocation)
};
void* image_malloc(size_t size, H5FD_file_image_op_t, void*) { return std::malloc(size); }
void* image_memcpy(void* dest, const void* src, size_t size, H5FD_file_image_op_t, void*) {
  return std::memcpy(dest, src, size);
}
void* image_realloc(void* ptr, size_t size, H5FD_file_image_op_t op, void* udata) {
  void* p = std::realloc(ptr, size);
  if (p && op == H5FD_FILE_IMAGE_OP_FILE_RESIZE) static_cast<ImageSink*>(udata)->capacity = size;
  return p;
}
herr_t image_free(void* ptr, H5FD_file_image_op_t op, void* udata) {
  auto* sink = static_cast<ImageSink*>(udata);
  if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && sink && !sink->kept) {
    sink->kept = ptr;
  } else {
    std::free(ptr);
  }
  return 0;
}

// The end-of-file address recorded in an HDF5 superblock at offset 0 (versions 0-3, 8-byte
// addresses, base address 0): the length of the file the library closed. 0 if unrecognised.
uint64_t superblock_eof(const uint8_t* p, size_t n) {
  static const uint8_t kSig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  if (n < 64 || std::memcmp(p, kSig, 8) != 0) return 0;
  size_t base_at, eof_at;
  switch (p[8]) {
    case 0: base_at = 24, eof_at = 40; break;
    case 1: base_at = 28, eof_at = 44; break;
    case 2:
    case 3: base_at = 12, eof_at = 28; break;
    default: return 0;
  }
  if (p[8] <= 1 ? p[13] != 8 : p[9] != 8) return 0;  // size of offsets
  uint64_t base, eof;
  std::memcpy(&base, p + base_at, 8);
  std::memcpy(&eof, p + eof_at, 8);
  return base == 0 ? eof : 0;
}
void* image_udata_copy(void* udata) { return udata; }
herr_t image_udata_free(void*) { return 0; }

}  // namespace

ShardImage shard_image(const Table& table, int64_t begin, int64_t end, const WriterOptions& options,
                                 const std::string& path) {
  using h5::Handle;
  h5::quiet();
  table.check();
  CONFLUX_CHECK(begin >= 0 && begin <= end && end <= table.rows(), "{}: rows [{}, {}) of {}", path, begin, end,
                table.rows());
  const Schema& schema = table.schema();
  const int64_t rows = end - begin;
  // Size hint for the in-memory file: all values plus offsets plus room for the metadata.
  size_t estimate = 1 << 20;
  for (size_t f = 0; f < schema.size(); ++f) {
    const Field& fd = schema[f];
    const Column& c = table.column(f);
    // The last chunk of a dataset is stored whole: one chunk of slack per dataset.
    if (fd.ragged())
      estimate += static_cast<size_t>(c.offsets[end] - c.offsets[begin]) * fd.element_size() + 8 * (rows + 1) +
                  2 * static_cast<size_t>(options.chunk_bytes);
    else
      estimate += static_cast<size_t>(rows * fd.row_width()) * fd.element_size() +
                  static_cast<size_t>(options.chunk_bytes);
  }
  Handle fcpl(H5_CHECK(H5Pcreate(H5P_FILE_CREATE), "{}", path), Handle::Kind::Plist);
  H5_CHECK(H5Pset_obj_track_times(fcpl, 0), "{}", path);
  Handle fapl(H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), "{}", path), Handle::Kind::Plist);
  H5_CHECK(H5Pset_fapl_core(fapl, estimate, /*backing_store=*/0), "{}", path);
  ImageSink sink;
  H5FD_file_image_callbacks_t callbacks = {image_malloc, image_memcpy,     image_realloc, image_free,
                                           image_udata_copy, image_udata_free, &sink};
  H5_CHECK(H5Pset_file_image_callbacks(fapl, &callbacks), "{}", path);
  // The in-memory file gets a name no file on disk has: HDF5 probes the name before creating, and
  // the core driver would load an existing file of that name.
  static std::atomic<uint64_t> serial{0};
  std::string mem_name = fmt::format("{}.in-memory.{}.{}", path, ::getpid(), serial++);
  for (struct stat sb; ::stat(mem_name.c_str(), &sb) == 0;) mem_name += "_";
  Handle file(H5_CHECK(H5Fcreate(mem_name.c_str(), H5F_ACC_TRUNC, fcpl, fapl), "{}: create shard (in memory)", path),
              Handle::Kind::File);
  write_int_attr(file, path, "conflux_format_version", kFormatVersion);
  write_int_attr(file, path, "rows", rows);
  std::vector<int64_t> offsets;
  for (size_t f = 0; f < schema.size(); ++f) {
    const Field& fd = schema[f];
    const Column& c = table.column(f);
    const size_t es = fd.element_size();
    if (fd.ragged()) {
      const int64_t first = c.offsets[begin];
      hsize_t n = static_cast<hsize_t>(c.offsets[end] - first);
      write_array(file, path, fd.name, h5::file_type(fd.dtype()), h5::native_type(fd.dtype()), c.data.data() + first * es, 1, &n, es,
                  options.chunk_bytes);
      offsets.resize(static_cast<size_t>(rows) + 1);
      for (int64_t r = 0; r <= rows; ++r) offsets[r] = c.offsets[begin + r] - first;
      hsize_t no = offsets.size();
      write_array(file, path, fd.offsets_name(), H5T_STD_I64LE, H5T_NATIVE_INT64, offsets.data(), 1, &no, 8,
                  options.chunk_bytes);
    } else {
      const uint8_t* data = c.data.data() + static_cast<size_t>(begin * fd.row_width()) * es;
      if (fd.role == Role::Features) {
        hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(fd.dim)};
        write_array(file, path, fd.name, h5::file_type(fd.dtype()), h5::native_type(fd.dtype()), data, 2, dims, es, options.chunk_bytes);
      } else {
        hsize_t n = static_cast<hsize_t>(rows);
        write_array(file, path, fd.name, h5::file_type(fd.dtype()), h5::native_type(fd.dtype()), data, 1, &n, es, options.chunk_bytes);
      }
    }
  }
  // Closing finishes the file in the driver's buffer, which image_free hands over; its length is
  // the end-of-file address the library wrote into the superblock (a file written to disk would
  // be exactly these bytes).
  file.close_checked(fmt::format("{}: close shard image", path));
  CONFLUX_CHECK(sink.kept != nullptr, "{}: the HDF5 core driver did not hand over its image", path);
  ShardImage image;
  image.data.reset(static_cast<uint8_t*>(sink.kept));
  image.size = static_cast<size_t>(superblock_eof(image.data.get(), sink.capacity));
  CONFLUX_CHECK(image.size > 0 && image.size <= sink.capacity,
                "{}: unexpected HDF5 superblock in the shard image (end of file {}, buffer {})", path, image.size,
                sink.capacity);
  return image;
}

namespace {

// Creates `path` with exactly `bytes` and starts write-back; returns the open descriptor.
int write_file_unsynced(const std::string& path, const uint8_t* bytes, size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) CONFLUX_THROW(IoError, "{}: cannot create: {}", path, std::strerror(errno));
  size_t done = 0;
  while (done < size) {
    ssize_t w = ::write(fd, bytes + done, size - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = errno;
      ::close(fd);
      CONFLUX_THROW(IoError, "{}: write failed after {} of {} bytes: {}", path, done, size,
                    std::strerror(err));
    }
    done += static_cast<size_t>(w);
  }
  ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // start write-back; it overlaps the hashing
  return fd;
}

// fsync + close (the descriptor is closed even when fsync fails).
void sync_and_close(int fd, const std::string& path) {
  int rc = ::fsync(fd);
  int err = errno;
  if (::close(fd) != 0 && rc == 0) {
    rc = -1;
    err = errno;
  }
  if (rc != 0) CONFLUX_THROW(IoError, "{}: fsync failed: {}", path, std::strerror(err));
}

}  // namespace

std::string write_file_synced(const std::string& path, const uint8_t* bytes, size_t size) {
  int fd = write_file_unsynced(path, bytes, size);
  std::string sha;
  try {
    sha = sha256_hex(bytes, size);
  } catch (...) {
    ::close(fd);
    throw;
  }
  sync_and_close(fd, path);
  return sha;
}

void write_shard_file(const std::string& path, const Table& table, const WriterOptions& options) {
  ShardImage image = shard_image(table, 0, table.rows(), options, path);
  write_file_synced(path, image.data.get(), image.size);
}

std::string staging_dir_for(const std::string& out_dir) {
  fs::path p = fs::path(out_dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return (p.parent_path() / ("." + p.filename().string() + ".staging")).string();
}

std::string prepare_staging(const std::string& out_dir, const char* marker, const char* what) {
  std::string staging = staging_dir_for(out_dir);
  std::error_code ec;
  fs::path parent = fs::path(staging).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec) && !fs::create_directories(parent, ec))
    CONFLUX_THROW(IoError, "cannot create the output's parent directory '{}': {}", parent.string(), ec.message());
  if (fs::exists(out_dir, ec) && !fs::exists(fs::path(out_dir) / marker, ec) &&
      !fs::is_empty(out_dir, ec))
    CONFLUX_THROW(IoError, "output '{}' exists and is not {} (no {}); refusing to replace it", out_dir, what,
                  marker);
  fs::remove_all(staging, ec);
  if (!fs::create_directory(staging, ec))
    CONFLUX_THROW(IoError, "cannot create staging directory '{}': {}", staging, ec.message());
  return staging;
}

void remove_staging(const std::string& out_dir) {
  std::error_code ec;
  fs::remove_all(staging_dir_for(out_dir), ec);
}

DatasetWriter::DatasetWriter(std::string out_dir, Schema schema, bool create_staging, WriterOptions options)
    : out_dir_(std::move(out_dir)), schema_(std::move(schema)), options_(options) {
  staging_ = create_staging ? prepare_staging(out_dir_) : staging_dir_for(out_dir_);
  if (!create_staging && !fs::is_directory(staging_))
    CONFLUX_THROW(IoError, "staging directory '{}' does not exist (rank 0 creates it)", staging_);
}

DatasetWriter::~DatasetWriter() {
  if (!committed_ && !released_) {
    std::error_code ec;
    fs::remove_all(staging_, ec);
  }
}

ShardInfo DatasetWriter::write_shard(int64_t index, const Table& table) const {
  if (table.schema() != schema_)
    CONFLUX_THROW(InternalError, "shard {} has schema ({}) but the writer expects ({})", index,
                  table.schema().describe(), schema_.describe());
  return write_image(index, table.rows(), shard_image(table, 0, table.rows(), options_,
                                                      staging_ + "/" + shard_file_name(index)));
}

ShardInfo DatasetWriter::write_image(int64_t index, int64_t rows, const ShardImage& image) const {
  ShardInfo info;
  info.file = shard_file_name(index);
  info.rows = rows;
  info.bytes = static_cast<int64_t>(image.size);
  info.sha256 = write_file_synced(staging_ + "/" + info.file, image.data.get(), image.size);
  return info;
}

ShardInfo DatasetWriter::write_image_unhashed(int64_t index, int64_t rows, const ShardImage& image) const {
  ShardInfo info;
  info.file = shard_file_name(index);
  info.rows = rows;
  info.bytes = static_cast<int64_t>(image.size);
  const std::string path = staging_ + "/" + info.file;
  sync_and_close(write_file_unsynced(path, image.data.get(), image.size), path);
  return info;
}

void DatasetWriter::commit(const Manifest& manifest) {
  // Every shard was fsync'ed as it was written; the manifest is written atomically inside the
  // staging directory, which is then published (swapped with an existing dataset in one step).
  write_file_atomic(staging_ + "/" + kManifestFile, manifest.to_json_text());
  const auto t = std::chrono::steady_clock::now();
  publish_directory(staging_, out_dir_, PublishOptions{/*sync_files=*/false});
  committed_ = true;
  log::debug("write: published '{}' in {:.0f} ms", out_dir_,
             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
}

}  // namespace conflux::dataplane
