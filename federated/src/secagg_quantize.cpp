// Secure aggregation: clipping and unbiased stochastic quantization of an update to integers mod
// 2^bits, and dequantization of a sum of up to n of them (the scale leaves room so it never wraps).
#include <conflux/federated/secagg.h>

#include <algorithm>
#include <cmath>

namespace conflux::federated::secagg {

Quantizer::Quantizer(double clip, int bits, uint32_t max_summands)
    : clip_(clip), bits_(bits), max_summands_(max_summands) {
  if (!(clip > 0) || !std::isfinite(clip))
    CONFLUX_THROW(ConfigError, "secure_aggregation.clip must be positive and finite, got {}", clip);
  if (bits < 8 || bits > 32)
    CONFLUX_THROW(ConfigError, "secure_aggregation.modulus_bits must be in [8, 32], got {}", bits);
  if (max_summands < 1)
    CONFLUX_THROW(ConfigError, "secure aggregation: the quantizer needs at least 1 summand");
  const uint64_t half = (uint64_t{1} << (bits - 1)) - 1;  // largest positive value of the sum
  max_level_ = static_cast<uint32_t>(half / max_summands);
  if (max_level_ < 1)
    CONFLUX_THROW(ConfigError,
                  "secure aggregation: {} participants do not fit in {}-bit sums (raise "
                  "secure_aggregation.modulus_bits)", max_summands, bits);
  scale_ = static_cast<double>(max_level_) / clip;
}

std::vector<uint32_t> Quantizer::quantize(const float* x, size_t n, RandomSource& rng) const {
  const uint32_t mask = bits_ >= 32 ? 0xFFFFFFFFu : ((1u << bits_) - 1u);
  const double m = max_level_;
  std::vector<uint32_t> q(n);
  std::vector<uint32_t> u(std::min<size_t>(n, 4096));
  for (size_t start = 0; start < n; start += u.size()) {
    const size_t count = std::min(u.size(), n - start);
    rng.fill(reinterpret_cast<uint8_t*>(u.data()), count * sizeof(uint32_t));
    for (size_t i = 0; i < count; ++i) {
      const float v = x[start + i];
      if (!std::isfinite(v))
        CONFLUX_THROW(DataError, "secure aggregation: update coordinate {} is {}", start + i,
                      std::isnan(v) ? "NaN" : "infinite");
      const double y = std::clamp(static_cast<double>(v), -clip_, clip_) * scale_;
      const double fl = std::floor(y);
      // P(round up) = y - floor(y): E[q] = y (unbiased).
      double r = fl + ((static_cast<double>(u[i]) * 0x1p-32) < (y - fl) ? 1.0 : 0.0);
      r = std::clamp(r, -m, m);
      q[start + i] = static_cast<uint32_t>(static_cast<int64_t>(r)) & mask;
    }
  }
  return q;
}

std::vector<float> Quantizer::dequantize_sum(const std::vector<uint32_t>& sum) const {
  const uint64_t modulus = uint64_t{1} << bits_;
  const uint64_t mask = modulus - 1;
  std::vector<float> out(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) {
    int64_t v = static_cast<int64_t>(sum[i] & mask);
    if (v >= static_cast<int64_t>(modulus / 2)) v -= static_cast<int64_t>(modulus);
    out[i] = static_cast<float>(static_cast<double>(v) / scale_);
  }
  return out;
}

}  // namespace conflux::federated::secagg
