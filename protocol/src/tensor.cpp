// Tensor construction and byte-size arithmetic (overflow-checked) for the wire protocol.
#include <conflux/protocol/tensor.h>

#include <conflux/core/error.h>

#include <limits>

namespace conflux::protocol {

uint64_t tensor_bytes(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) CONFLUX_THROW(DataError, "tensor dimension {} is negative", d);
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
      CONFLUX_THROW(DataError, "tensor size overflows 64 bits");
    }
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

Tensor Tensor::allocate(std::string name, DType dtype, std::vector<int64_t> shape) {
  uint64_t bytes = tensor_bytes(dtype, shape);
  std::shared_ptr<uint8_t[]> buf(new uint8_t[bytes == 0 ? 1 : bytes]);
  const void* p = buf.get();
  return adopt(std::move(name), dtype, std::move(shape), std::shared_ptr<const void>(buf, p), p,
               bytes);
}

Tensor Tensor::copy(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                    size_t bytes) {
  Tensor t = allocate(std::move(name), dtype, std::move(shape));
  if (t.bytes_ != bytes) {
    CONFLUX_THROW(DataError, "tensor '{}': {} bytes given, shape and dtype need {}", t.name_, bytes,
                  t.bytes_);
  }
  if (bytes) std::memcpy(t.mutable_data(), data, bytes);
  return t;
}

Tensor Tensor::adopt(std::string name, DType dtype, std::vector<int64_t> shape,
                     std::shared_ptr<const void> owner, const void* data, size_t bytes) {
  uint64_t need = tensor_bytes(dtype, shape);
  if (need != bytes) {
    CONFLUX_THROW(DataError, "tensor '{}': {} bytes given, shape and dtype need {}", name, bytes,
                  need);
  }
  Tensor t;
  t.name_ = std::move(name);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  t.data_ = static_cast<const uint8_t*>(data);
  t.bytes_ = bytes;
  return t;
}

bool Tensor::equals(const Tensor& o) const {
  return name_ == o.name_ && dtype_ == o.dtype_ && shape_ == o.shape_ && bytes_ == o.bytes_ &&
         (bytes_ == 0 || std::memcmp(data_, o.data_, bytes_) == 0);
}

}  // namespace conflux::protocol
