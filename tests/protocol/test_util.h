// Helpers shared by the protocol tests: deterministic tensors of every dtype, frame plumbing.
#pragma once

#include <conflux/protocol/codec.h>

#include <cstdint>
#include <string>
#include <vector>

namespace conflux::protocol::test {

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> v{DType::F32, DType::F64, DType::BF16, DType::F16,
                                    DType::I32, DType::I64, DType::U8};
  return v;
}

// Deterministic pseudo-random bytes (splitmix64) for a tensor of the given dtype/shape; float
// types get finite values so sums are well defined.
inline Tensor make_tensor(const std::string& name, DType dt, std::vector<int64_t> shape,
                          uint64_t seed) {
  Tensor t = Tensor::allocate(name, dt, shape);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&] {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  uint8_t* p = t.mutable_data();
  const size_t n = static_cast<size_t>(t.numel());
  for (size_t i = 0; i < n; ++i) {
    uint64_t r = next();
    float f = static_cast<float>(static_cast<int64_t>(r % 2001) - 1000) / 8.0f;
    switch (dt) {
      case DType::F32: std::memcpy(p + 4 * i, &f, 4); break;
      case DType::F64: {
        double d = static_cast<double>(static_cast<int64_t>(r % 200001) - 100000) / 64.0;
        std::memcpy(p + 8 * i, &d, 8);
        break;
      }
      case DType::BF16: { uint16_t v = float_to_bf16(f); std::memcpy(p + 2 * i, &v, 2); break; }
      case DType::F16: { uint16_t v = float_to_f16(f); std::memcpy(p + 2 * i, &v, 2); break; }
      case DType::I32: { uint32_t v = static_cast<uint32_t>(r); std::memcpy(p + 4 * i, &v, 4); break; }
      case DType::I64: std::memcpy(p + 8 * i, &r, 8); break;
      case DType::U8: p[i] = static_cast<uint8_t>(r); break;
    }
  }
  return t;
}

// Turns a WireMessage into owned received-style frames (header first).
inline std::vector<FrameRef> to_frames(const WireMessage& w) {
  std::vector<FrameRef> out;
  auto h = std::make_shared<std::string>(w.header);
  out.push_back(FrameRef{reinterpret_cast<const uint8_t*>(h->data()), h->size(), h});
  for (const auto& f : w.frames) {
    auto b = std::make_shared<std::string>(reinterpret_cast<const char*>(f.data), f.size);
    out.push_back(FrameRef{reinterpret_cast<const uint8_t*>(b->data()), b->size(), b});
  }
  return out;
}

inline FrameRef string_frame(const std::string& s) {
  auto b = std::make_shared<std::string>(s);
  return FrameRef{reinterpret_cast<const uint8_t*>(b->data()), b->size(), b};
}

}  // namespace conflux::protocol::test
