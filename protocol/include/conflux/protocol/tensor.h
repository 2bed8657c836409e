// Tensor: a named, typed, shaped block of bytes as the wire protocol carries it.
//
// Contract: a Tensor never copies on its own; its bytes belong to a shared `owner` (a heap
// buffer, a received ZeroMQ frame, a caller's object) that lives as long as any Tensor or any
// in-flight ZeroMQ frame refers to it. This is what makes sending and receiving zero-copy.
// Bytes are little-endian, row-major. Thread safety: a Tensor is an immutable value once built
// (mutable_data() is for the code that allocated it, before it is shared); copies share bytes.
#pragma once

#include <conflux/core/dtype.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace conflux::protocol {

class Tensor {
 public:
  Tensor() = default;

  // A fresh, uninitialised buffer of the right size; fill it through mutable_data().
  static Tensor allocate(std::string name, DType dtype, std::vector<int64_t> shape);
  // Copies `bytes` bytes from `data` (bytes must equal numel * dtype size).
  static Tensor copy(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                     size_t bytes);
  // Zero-copy: refers to `data` and keeps `owner` alive while referenced.
  static Tensor adopt(std::string name, DType dtype, std::vector<int64_t> shape,
                      std::shared_ptr<const void> owner, const void* data, size_t bytes);
  // Zero-copy from a vector the tensor takes over (T must match the dtype's size).
  template <typename T>
  static Tensor from_vector(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::vector<T> values) {
    auto holder = std::make_shared<std::vector<T>>(std::move(values));
    const void* p = holder->data();
    size_t n = holder->size() * sizeof(T);
    return adopt(std::move(name), dtype, std::move(shape), std::move(holder), p, n);
  }

  const std::string& name() const { return name_; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return const_cast<uint8_t*>(data_); }
  size_t byte_length() const { return bytes_; }
  const std::shared_ptr<const void>& owner() const { return owner_; }
  template <typename T>
  const T* as() const { return reinterpret_cast<const T*>(data_); }

  // Same name, dtype, shape and bytes.
  bool equals(const Tensor& other) const;

 private:
  std::string name_;
  DType dtype_ = DType::U8;
  std::vector<int64_t> shape_;
  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

// numel * dtype size, or throws DataError on negative dims or overflow.
uint64_t tensor_bytes(DType dtype, const std::vector<int64_t>& shape);

}  // namespace conflux::protocol
