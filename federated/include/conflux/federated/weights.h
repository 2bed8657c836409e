// Model weights as the federated server sees them: an ordered list of named float32 arrays (the
// safetensors tensors of a checkpoint or an update), and one participant's result for a round.
//
// The server's maths is plain float32 arithmetic over these arrays (no libtorch). `layout_error`
// is the one check that a result matches the global model (names, shapes, finite values): it
// names the source (a file, a worker) and the tensor. Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::federated {

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major, product(shape) elements
};

using Weights = std::vector<NamedTensor>;

struct ClientResult {
  Weights weights;            // the participant's new weights (not a delta)
  uint64_t num_examples = 0;  // examples it trained on (FedAvg's weight); must be >= 1
  std::string source;         // for errors: "update3.safetensors", "worker alice"
};

// Total elements of a shape; DataError naming `what` if negative or overflowing.
size_t numel(const std::vector<int64_t>& shape, const std::string& what);
// "[3, 4]"
std::string shape_string(const std::vector<int64_t>& shape);

// Checks that every tensor's value count matches its shape and every value is finite; DataError
// naming `source` and the tensor ("update3.safetensors: tensor 'w' has NaN at index 12").
void check_weights(const Weights& w, const std::string& source);

// Reorders `w` to the names and order of `layout`, checking that the names and shapes are
// exactly the same (extra, missing, or reshaped tensors are a DataError naming `source`, the
// tensor, both shapes and `layout_name`, where the layout came from: "the global model").
void match_layout(Weights& w, const Weights& layout, const std::string& source,
                  const std::string& layout_name = "the global model");

// Bytes of float data in `w`.
size_t weight_bytes(const Weights& w);

// The L2 distance of two same-layout models, and the L2 norm of a float vector, in double: eight
// partial sums in a fixed order (the same result every run) so that the loop vectorizes instead
// of waiting on one accumulator (a serial sum was 6 % of all CPU in a 16-participant round).
// Not finite iff some value is NaN or Inf (squares of float differences cannot overflow a double).
double l2_distance(const Weights& a, const Weights& b);
double l2_norm(const float* x, size_t n);

// DP-FedAvg's clipping factor: min(1, clip / norm), which scales a vector of L2 norm `norm` to at
// most `clip` (on the server, DpFedAvg; on a participant under secure aggregation).
inline double clip_factor(double norm, double clip) { return norm > clip ? clip / norm : 1.0; }

}  // namespace conflux::federated
