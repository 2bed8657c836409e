// The safetensors header (https://github.com/huggingface/safetensors), parsed and built without
// libtorch, so the file layout is validated in one place that the trainer, torch-free tools and
// a libFuzzer target (fuzz/safetensors_fuzz.cpp) share.
//
//   file = 8 bytes little-endian header length N | N bytes JSON header | data section
//   header = {"<tensor>": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]},
//             ..., "__metadata__": {"<key>": "<string>", ...}}   (offsets relative to the data)
//
// Every way a header can be malformed (length past the end of the file, not JSON, not an object,
// a missing or mistyped field, an unknown dtype, negative or overflowing shapes, offsets that do
// not match the shape or leave the data section) is a DataError naming the file and the tensor or
// field, never another exception. Thread safety: pure functions.
#pragma once

#include "conflux/core/dtype.h"

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace conflux {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // header order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section (8 + N)
};

// The header length N from the file's first 8 bytes, checked against the file size.
uint64_t safetensors_header_length(const unsigned char first8[8], uint64_t file_size,
                                   const std::string& path);
// Parses and validates the N header bytes; `data_size` is the file size minus 8 + N.
SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_size,
                                           const std::string& path);

// Reads and parses the header of the open file `in` (positioned anywhere): the file size, the
// length, the JSON. IoError on a short read, DataError as above. The tensors' bytes are then at
// data_start + begin.
SafetensorsHeader read_safetensors_header(std::istream& in, const std::string& path);

// The file's first 8 + N bytes for `tensors` (their offsets as given) and `metadata`: the JSON
// header padded with spaces so the data section starts 8-byte aligned.
std::string build_safetensors_header(const std::vector<SafetensorsEntry>& tensors,
                                     const std::map<std::string, std::string>& metadata);

}  // namespace conflux
