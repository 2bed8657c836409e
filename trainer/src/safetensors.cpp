// safetensors reader/writer (see safetensors.h): torch tensors on top of core's header parser
// (safetensors_header.h) and atomic file writes (atomic_file.h).
#include "conflux/trainer/safetensors.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/safetensors_header.h"
#include "conflux/core/tensor_comm.h"

#include <fstream>

namespace conflux::trainer {

const torch::Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    SafetensorsEntry e;
    try {
      e.dtype = torch_to_dtype(t.scalar_type());  // core's torch <-> DType map (tensor_comm.h)
    } catch (const Error&) {
      CONFLUX_THROW(DataError, "{}: tensor '{}' has unsupported dtype {}", path, name,
                    c10::toString(t.scalar_type()));
    }
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    e.name = name;
    e.shape = c.sizes().vec();
    e.begin = offset;
    e.end = offset += static_cast<uint64_t>(c.numel()) * c.element_size();
    entries.push_back(std::move(e));
    data.push_back(c);
  }
  const std::string header = build_safetensors_header(entries, metadata);
  std::vector<ByteSpan> pieces{{header.data(), header.size()}};
  for (const auto& c : data)
    pieces.push_back({c.data_ptr(), static_cast<size_t>(c.numel()) * c.element_size()});
  write_file_atomic(path, pieces);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(IoError, "cannot open {}", path);
  const SafetensorsHeader header = read_safetensors_header(in, path);
  SafetensorsFile file;
  file.metadata = header.metadata;
  for (const SafetensorsEntry& e : header.tensors) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(dtype_to_torch(e.dtype)));
    in.seekg(static_cast<std::streamoff>(header.data_start + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) CONFLUX_THROW(IoError, "{}: short read of tensor '{}'", path, e.name);
    file.tensors.emplace_back(e.name, t);
  }
  return file;
}

}  // namespace conflux::trainer
