// float32 safetensors files as federated Weights, without libtorch: the header goes through
// core's parser (safetensors_header.h), the data is read straight into the arrays, and writes
// are atomic (atomic_file.h). Only F32 tensors are accepted (the server's arithmetic is float32);
// another dtype is a DataError naming the file and tensor. Tensors keep the header's order.
// A strategy's server state is a safetensors file too: its tensors plus the JSON meta under the
// metadata key "conflux.strategy_state". Thread safety: free functions.
#pragma once

#include "conflux/federated/strategy.h"
#include "conflux/federated/weights.h"

#include <map>
#include <string>

namespace conflux::federated {

struct WeightsFile {
  Weights weights;
  std::map<std::string, std::string> metadata;
};

WeightsFile read_weights(const std::string& path);
void write_weights(const std::string& path, const Weights& weights,
                   const std::map<std::string, std::string>& metadata = {});

StrategyState read_strategy_state(const std::string& path);
void write_strategy_state(const std::string& path, const StrategyState& state);

}  // namespace conflux::federated
