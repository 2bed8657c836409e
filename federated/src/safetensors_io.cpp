// float32 safetensors I/O for federated Weights (safetensors_io.h).
#include "conflux/federated/safetensors_io.h"

#include "conflux/core/atomic_file.h"
#include "conflux/core/error.h"
#include "conflux/core/safetensors_header.h"

#include <fstream>

namespace conflux::federated {

namespace {

constexpr const char* kStateKey = "conflux.strategy_state";

}  // namespace

WeightsFile read_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) CONFLUX_THROW(IoError, "cannot open {}", path);
  const SafetensorsHeader header = read_safetensors_header(in, path);
  WeightsFile file;
  file.metadata = header.metadata;
  for (const SafetensorsEntry& e : header.tensors) {
    if (e.dtype != DType::F32)
      CONFLUX_THROW(DataError, "{}: tensor '{}' has dtype {}; federated aggregation takes float32 (F32)", path,
                    e.name, dtype_info(e.dtype).safetensors);
    NamedTensor t{e.name, e.shape, std::vector<float>((e.end - e.begin) / sizeof(float))};
    in.seekg(static_cast<std::streamoff>(header.data_start + e.begin));
    in.read(reinterpret_cast<char*>(t.values.data()), static_cast<std::streamsize>(e.end - e.begin));
    if (!in) CONFLUX_THROW(IoError, "{}: short read of tensor '{}'", path, e.name);
    file.weights.push_back(std::move(t));
  }
  return file;
}

void write_weights(const std::string& path, const Weights& weights,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsEntry> entries;
  uint64_t offset = 0;
  for (const NamedTensor& t : weights) {
    SafetensorsEntry e;
    e.name = t.name;
    e.dtype = DType::F32;
    e.shape = t.shape;
    e.begin = offset;
    e.end = offset += t.values.size() * sizeof(float);
    entries.push_back(std::move(e));
  }
  const std::string header = build_safetensors_header(entries, metadata);
  std::vector<ByteSpan> pieces{{header.data(), header.size()}};
  for (const NamedTensor& t : weights) pieces.push_back({t.values.data(), t.values.size() * sizeof(float)});
  write_file_atomic(path, pieces);
}

StrategyState read_strategy_state(const std::string& path) {
  WeightsFile f = read_weights(path);
  auto it = f.metadata.find(kStateKey);
  if (it == f.metadata.end())
    CONFLUX_THROW(DataError, "{}: not a strategy state (no '{}' metadata)", path, kStateKey);
  StrategyState s;
  try {
    s.meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    CONFLUX_THROW(DataError, "{}: metadata '{}' is not JSON: {}", path, kStateKey, e.what());
  }
  s.tensors = std::move(f.weights);
  return s;
}

void write_strategy_state(const std::string& path, const StrategyState& state) {
  write_weights(path, state.tensors, {{kStateKey, state.meta.dump()}});
}

}  // namespace conflux::federated
