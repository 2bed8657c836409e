// Training metrics: JSON lines (one object per record) and a TensorBoard event file.
//
// The event file is what TensorFlow's summary writer produces: TFRecord framing
//   uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)
// (little-endian; masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8, CRC-32C Castagnoli), the
// first record an Event{wall_time, file_version: "brain.Event:2"}, then one Event{wall_time,
// step, summary{value{tag, simple_value}}} per scalar. The protobuf messages are encoded by hand
// (field numbers from tensorflow/core/util/event.proto and summary.proto). Files are named
// events.out.tfevents.<unix time>.<host> as TensorBoard expects; records are flushed per step.
// Thread safety: one writer per thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace conflux::trainer {

// CRC-32C (Castagnoli) and TFRecord's masked form.
uint32_t crc32c(const void* data, size_t n);
inline uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

class EventWriter {
 public:
  // Creates `dir` if needed and a new event file in it.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  void add_scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Appends one JSON object per line to a file (created if missing), flushed per line.
class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path, bool append = true);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;
  void write(const std::string& json_line);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace conflux::trainer
