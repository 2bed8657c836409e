// bf16 autocast on CUDA for one scope, across libtorch versions (1.13: set_enabled and
// set_autocast_gpu_dtype; 2.4 and later: the per-device-type calls). Restores "off" and clears
// the cast cache when the scope ends, also when the forward pass throws.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace conflux::trainer {

class CudaAutocast {
 public:
  explicit CudaAutocast(bool enabled) : enabled_(enabled) {
    if (enabled_) set(true);
  }
  ~CudaAutocast() {
    if (enabled_) {
      set(false);
      at::autocast::clear_cache();
    }
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  static void set(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, on);
    if (on) at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    at::autocast::set_enabled(on);
    if (on) at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
  }
  bool enabled_;
};

}  // namespace conflux::trainer
