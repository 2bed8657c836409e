// safetensors reading and writing (https://github.com/huggingface/safetensors format):
//   8 bytes little-endian header length N | N bytes JSON header | raw tensor bytes.
// The header maps each tensor name to {"dtype": "F32"|..., "shape": [...], "data_offsets":
// [begin, end]} (offsets relative to the byte after the header) and may hold "__metadata__", a
// string -> string map. Tensors are written in the given order, contiguous, little-endian.
// Writes are atomic and durable (core/atomic_file.h: temp file, fsync, rename, fsync of the
// directory); reads validate every offset and size and throw DataError naming the file and tensor.
// Thread safety: free functions, no shared state.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace conflux::trainer {

struct SafetensorsFile {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // file order
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace conflux::trainer
