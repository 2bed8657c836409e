// TensorBoard event files and JSON-lines metrics (see metrics.h).
#include "conflux/trainer/metrics.h"

#include "conflux/core/error.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

namespace conflux::trainer {
namespace {

const uint32_t* crc_table() {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  return table;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <typename T>
void put_fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 is little-endian, as protobuf and TFRecord require
  out.append(b, sizeof(T));
}

// Field key: (field_number << 3) | wire_type.
void put_key(std::string& out, int field, int wire) { put_varint(out, (uint64_t(field) << 3) | wire); }

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const uint32_t* t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

EventWriter::EventWriter(const std::string& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  const auto secs = static_cast<int64_t>(now_seconds());
  path_ = (std::filesystem::path(dir) / fmt::format("events.out.tfevents.{}.{}", secs, host)).string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) CONFLUX_THROW(IoError, "cannot create TensorBoard event file {}", path_);
  // Event { double wall_time = 1; string file_version = 3; }
  std::string ev;
  put_key(ev, 1, 1);
  put_fixed<double>(ev, now_seconds());
  put_bytes(ev, 3, "brain.Event:2");
  write_record(ev);
  flush();
}

EventWriter::~EventWriter() {
  if (file_) std::fclose(file_);
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  // Summary.Value { string tag = 1; float simple_value = 2; }
  std::string val;
  put_bytes(val, 1, tag);
  put_key(val, 2, 5);
  put_fixed<float>(val, static_cast<float>(value));
  // Summary { repeated Value value = 1; }
  std::string summary;
  put_bytes(summary, 1, val);
  // Event { double wall_time = 1; int64 step = 2; Summary summary = 5; }
  std::string ev;
  put_key(ev, 1, 1);
  put_fixed<double>(ev, now_seconds());
  put_key(ev, 2, 0);
  put_varint(ev, static_cast<uint64_t>(step));
  put_bytes(ev, 5, summary);
  write_record(ev);
}

void EventWriter::write_record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  put_fixed<uint64_t>(rec, len);
  put_fixed<uint32_t>(rec, masked_crc32c(rec.data(), 8));
  rec += data;
  put_fixed<uint32_t>(rec, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(rec.data(), 1, rec.size(), file_) != rec.size())
    CONFLUX_THROW(IoError, "write to {} failed", path_);
}

void EventWriter::flush() {
  if (std::fflush(file_) != 0) CONFLUX_THROW(IoError, "flush of {} failed", path_);
}

JsonlWriter::JsonlWriter(const std::string& path, bool append) : path_(path) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  if (!file_) CONFLUX_THROW(IoError, "cannot open metrics file {}", path);
}

JsonlWriter::~JsonlWriter() {
  if (file_) std::fclose(file_);
}

void JsonlWriter::write(const std::string& line) {
  std::fputs(line.c_str(), file_);
  std::fputc('\n', file_);
  if (std::fflush(file_) != 0) CONFLUX_THROW(IoError, "write to {} failed", path_);
}

}  // namespace conflux::trainer
