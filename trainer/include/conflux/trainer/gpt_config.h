// Hyper-parameters of the GPT model (no libtorch here, so config and CLI code stay light).
#pragma once

#include <cstdint>

namespace conflux::trainer {

struct GptConfig {
  int64_t vocab_size = 256;
  int64_t context = 128;   // maximum sequence length (position embeddings)
  int64_t n_layer = 2;
  int64_t n_head = 4;
  int64_t d_model = 128;
  double dropout = 0.0;
  uint64_t init_seed = 1234;  // initial weights depend only on this, not on tp size

  int64_t head_dim() const { return d_model / n_head; }
  // Parameter count of the full (unsharded) model.
  int64_t num_params() const {
    const int64_t c = d_model;
    const int64_t block = 2 * 2 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) +
                          (4 * c * c + c);
    return vocab_size * c + context * c + n_layer * block + 2 * c;
  }
  // Forward+backward FLOPs per token (6N plus attention), for MFU.
  double flops_per_token(int64_t t) const {
    return 6.0 * static_cast<double>(num_params()) +
           12.0 * static_cast<double>(n_layer * d_model * t);
  }
};

// Throws ConfigError naming the field when the config is inconsistent (e.g. heads not dividing
// the width) or does not split over `tp` ranks.
void validate(const GptConfig& c, int tp);

}  // namespace conflux::trainer
