// torch::Tensor overloads of the Communicator collectives (header-only; link conflux_core_torch).
//
// Each overload maps the tensor's dtype to conflux::DType, requires a contiguous tensor (the
// collectives work on flat buffers in place) and passes data_ptr(). CPU tensors must go to an MPI
// communicator and CUDA tensors to an NCCL one; a mismatch throws CommError naming the group.
// Ownership: async forms need the tensor kept alive and untouched until the Work completes; the
// caller holds it (a Work handle does not).
#pragma once

#include "conflux/core/communicator.h"
#include "conflux/core/error.h"

#include <torch/types.h>

#include <vector>

namespace conflux {

inline DType torch_to_dtype(c10::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return DType::F32;
    case torch::kFloat64: return DType::F64;
    case torch::kBFloat16: return DType::BF16;
    case torch::kFloat16: return DType::F16;
    case torch::kInt32: return DType::I32;
    case torch::kInt64: return DType::I64;
    case torch::kUInt8: return DType::U8;
    default: CONFLUX_THROW(CommError, "tensor dtype {} has no collective dtype", c10::toString(t));
  }
}

inline c10::ScalarType dtype_to_torch(DType t) {
  switch (t) {
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    case DType::BF16: return torch::kBFloat16;
    case DType::F16: return torch::kFloat16;
    case DType::I32: return torch::kInt32;
    case DType::I64: return torch::kInt64;
    case DType::U8: return torch::kUInt8;
  }
  CONFLUX_THROW(InternalError, "unknown dtype {}", static_cast<int>(t));
}

namespace detail {
inline void check_tensor(const Communicator& comm, const torch::Tensor& t, const char* what) {
  if (!t.defined()) CONFLUX_THROW(CommError, "{} on group '{}': undefined tensor", what, comm.name());
  if (!t.is_contiguous())
    CONFLUX_THROW(CommError, "{} on group '{}': tensor must be contiguous", what, comm.name());
  const bool cuda = t.is_cuda();
  if (cuda && comm.backend() != Backend::Nccl)
    CONFLUX_THROW(CommError, "{} on group '{}': CUDA tensor given to the MPI back end", what,
                  comm.name());
  if (!cuda && comm.backend() == Backend::Nccl)
    CONFLUX_THROW(CommError, "{} on group '{}': CPU tensor given to the NCCL back end", what,
                  comm.name());
}
}  // namespace detail

inline void allreduce(Communicator& comm, torch::Tensor& t, ReduceOp op,
                      CallSite site = CallSite::here()) {
  detail::check_tensor(comm, t, "allreduce");
  comm.allreduce(t.data_ptr(), static_cast<size_t>(t.numel()), torch_to_dtype(t.scalar_type()), op,
                 site);
}

inline WorkHandle allreduce_async(Communicator& comm, torch::Tensor& t, ReduceOp op,
                                  CallSite site = CallSite::here()) {
  detail::check_tensor(comm, t, "allreduce_async");
  return comm.allreduce_async(t.data_ptr(), static_cast<size_t>(t.numel()),
                              torch_to_dtype(t.scalar_type()), op, site);
}

inline void broadcast(Communicator& comm, torch::Tensor& t, int root,
                      CallSite site = CallSite::here()) {
  detail::check_tensor(comm, t, "broadcast");
  comm.broadcast(t.data_ptr(), static_cast<size_t>(t.numel()), torch_to_dtype(t.scalar_type()),
                 root, site);
}

// recv must hold size() * send.numel() elements of send's dtype; rank r's part at r * numel.
inline void allgather(Communicator& comm, const torch::Tensor& send, torch::Tensor& recv,
                      CallSite site = CallSite::here()) {
  detail::check_tensor(comm, send, "allgather");
  detail::check_tensor(comm, recv, "allgather");
  if (recv.numel() != send.numel() * comm.size() || recv.scalar_type() != send.scalar_type())
    CONFLUX_THROW(CommError, "allgather on group '{}': recv has {} elements of {}, need {} of {}",
                  comm.name(), recv.numel(), c10::toString(recv.scalar_type()),
                  send.numel() * comm.size(), c10::toString(send.scalar_type()));
  comm.allgather(send.data_ptr(), recv.data_ptr(), static_cast<size_t>(send.numel()),
                 torch_to_dtype(send.scalar_type()), site);
}

// Convenience: returns a new tensor of shape (size(), *send.shape()).
inline torch::Tensor allgather(Communicator& comm, const torch::Tensor& send,
                               CallSite site = CallSite::here()) {
  std::vector<int64_t> shape{comm.size()};
  for (auto d : send.sizes()) shape.push_back(d);
  torch::Tensor recv = torch::empty(shape, send.options());
  allgather(comm, send, recv, site);
  return recv;
}

}  // namespace conflux
