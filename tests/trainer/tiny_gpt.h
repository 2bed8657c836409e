// The small GPT the trainer tests share: vocab 64, context 16, 2 layers, d_model 32 (fast on
// CPU, big enough for tensor-parallel splits of 2 and 4).
#pragma once

#include <conflux/trainer/gpt_config.h>

#include <cstdint>

namespace conflux::test {

inline trainer::GptConfig tiny_gpt(int n_head = 4, uint64_t seed = 11) {
  trainer::GptConfig c;
  c.vocab_size = 64;
  c.context = 16;
  c.n_layer = 2;
  c.n_head = n_head;
  c.d_model = 32;
  c.init_seed = seed;
  return c;
}

}  // namespace conflux::test
