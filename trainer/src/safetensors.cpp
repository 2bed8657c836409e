// safetensors reader/writer (see safetensors.h).
#include "conflux/trainer/safetensors.h"

#include "conflux/core/error.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace conflux::trainer {
namespace {

const std::map<c10::ScalarType, std::string>& dtype_names() {
  static const std::map<c10::ScalarType, std::string> m = {
      {torch::kFloat32, "F32"}, {torch::kFloat64, "F64"}, {torch::kBFloat16, "BF16"},
      {torch::kFloat16, "F16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
      {torch::kUInt8, "U8"},    {torch::kInt8, "I8"},     {torch::kBool, "BOOL"}};
  return m;
}

}  // namespace

const torch::Tensor* SafetensorsFile::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto it = dtype_names().find(t.scalar_type());
    if (it == dtype_names().end())
      CONFLUX_THROW(DataError, "{}: tensor '{}' has unsupported dtype {}", path, name,
                    c10::toString(t.scalar_type()));
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", it->second}, {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string json = header.dump();
  while ((json.size() + 8) % 8 != 0) json.push_back(' ');  // align the data to 8 bytes
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) CONFLUX_THROW(IoError, "cannot create {}", tmp);
    uint64_t n = json.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    for (const auto& c : data)
      out.write(static_cast<const char*>(c.data_ptr()),
                static_cast<std::streamsize>(c.numel() * c.element_size()));
    out.flush();
    if (!out) CONFLUX_THROW(IoError, "write to {} failed", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) CONFLUX_THROW(IoError, "rename {} -> {}: {}", tmp, path, ec.message());
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(IoError, "cannot open {}", path);
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (size < 8) CONFLUX_THROW(DataError, "{}: {} bytes is too short for a safetensors file", path, size);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > size - 8) CONFLUX_THROW(DataError, "{}: header length {} exceeds the file size {}", path, n, size);
  std::string json(n, '\0');
  in.read(json.data(), static_cast<std::streamsize>(n));
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(json);
  } catch (const std::exception& e) {
    CONFLUX_THROW(DataError, "{}: header is not valid JSON: {}", path, e.what());
  }
  const uint64_t data_size = size - 8 - n;
  SafetensorsFile file;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (auto& [k, v] : entry.items()) {
        if (!v.is_string()) CONFLUX_THROW(DataError, "{}: metadata '{}' is not a string", path, k);
        file.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    c10::ScalarType dtype = torch::kFloat32;
    bool found = false;
    const std::string dn = entry.value("dtype", "");
    for (const auto& [t, s] : dtype_names())
      if (s == dn) {
        dtype = t;
        found = true;
      }
    if (!found) CONFLUX_THROW(DataError, "{}: tensor '{}' has unknown dtype '{}'", path, name, dn);
    std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
    auto offs = entry.at("data_offsets").get<std::vector<uint64_t>>();
    int64_t numel = 1;
    for (auto d : shape) {
      if (d < 0) CONFLUX_THROW(DataError, "{}: tensor '{}' has a negative dimension", path, name);
      numel *= d;
    }
    torch::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    const uint64_t bytes = static_cast<uint64_t>(numel) * t.element_size();
    if (offs.size() != 2 || offs[1] < offs[0] || offs[1] > data_size || offs[1] - offs[0] != bytes)
      CONFLUX_THROW(DataError, "{}: tensor '{}' data_offsets do not match its shape ({} bytes) "
                    "or exceed the data section ({} bytes)", path, name, bytes, data_size);
    in.seekg(static_cast<std::streamoff>(8 + n + offs[0]));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!in) CONFLUX_THROW(IoError, "{}: short read of tensor '{}'", path, name);
    file.tensors.emplace_back(name, t);
  }
  return file;
}

}  // namespace conflux::trainer
