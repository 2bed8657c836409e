// Implementation of the tensor-parallel autograd functions (see parallel.h).
#include "conflux/trainer/parallel.h"

#include "conflux/core/tensor_comm.h"

namespace conflux::trainer {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

Communicator* comm_of(AutogradContext* ctx) {
  return reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
}

torch::Tensor allreduced(torch::Tensor t, Communicator& comm, ReduceOp op) {
  torch::Tensor out = t.contiguous().clone();
  allreduce(comm, out, op);
  return out;
}

struct CopyToTpFn : public torch::autograd::Function<CopyToTpFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t comm) {
    ctx->saved_data["comm"] = comm;
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {allreduced(grad[0], *comm_of(ctx), ReduceOp::Sum), torch::Tensor()};
  }
};

struct ReduceFromTpFn : public torch::autograd::Function<ReduceFromTpFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, int64_t comm) {
    return allreduced(x, *reinterpret_cast<Communicator*>(comm), ReduceOp::Sum);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {grad[0], torch::Tensor()};
  }
};

// Forward (per row n of N):  m = max_v logits (all-reduced max), e = exp(logits - m),
// S = sum_v e (all-reduced sum), t = logits[target] - m on the rank owning target (all-reduced
// sum), loss = log S - t.  Backward: d loss / d logits = softmax - onehot(target local).
struct VocabParallelCeFn : public torch::autograd::Function<VocabParallelCeFn> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor logits, torch::Tensor targets,
                               int64_t comm_ptr, int64_t rank) {
    Communicator* comm = reinterpret_cast<Communicator*>(comm_ptr);
    const int64_t vl = logits.size(1);                       // logits: (N, Vl)
    const int64_t start = rank * vl;
    torch::Tensor x = logits.detach().to(torch::kFloat32);   // (N, Vl)
    torch::Tensor m = std::get<0>(x.max(1));                 // (N)
    if (comm) m = allreduced(m, *comm, ReduceOp::Max);
    x = x - m.unsqueeze(1);                                  // (N, Vl)
    torch::Tensor outside = (targets < start).logical_or(targets >= start + vl);  // (N)
    torch::Tensor local = (targets - start).masked_fill(outside, 0);               // (N)
    torch::Tensor t = x.gather(1, local.unsqueeze(1)).squeeze(1).masked_fill(outside, 0.0);
    torch::Tensor e = x.exp();                               // (N, Vl)
    torch::Tensor s = e.sum(1);                              // (N)
    if (comm) {
      t = allreduced(t, *comm, ReduceOp::Sum);
      s = allreduced(s, *comm, ReduceOp::Sum);
    }
    torch::Tensor loss = s.log() - t;                        // (N)
    e.div_(s.unsqueeze(1));                                  // softmax slice (N, Vl)
    ctx->save_for_backward({e, local, outside});
    ctx->saved_data["dtype"] = static_cast<int64_t>(logits.scalar_type());
    return loss;  // float32 even for bf16 logits (autocast): the loss is reduced in float32
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto saved = ctx->get_saved_variables();
    torch::Tensor g = saved[0].clone();                      // (N, Vl) softmax
    torch::Tensor local = saved[1], outside = saved[2];
    torch::Tensor onehot = (~outside).to(g.scalar_type());   // (N)
    g.scatter_add_(1, local.unsqueeze(1), -onehot.unsqueeze(1));
    g.mul_(grad[0].to(g.scalar_type()).unsqueeze(1));
    auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {g.to(dtype), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

int64_t ptr(const TpGroup& tp) { return reinterpret_cast<int64_t>(tp.comm); }

}  // namespace

torch::Tensor copy_to_tp(const torch::Tensor& x, const TpGroup& tp) {
  if (tp.size == 1) return x;
  return CopyToTpFn::apply(x, ptr(tp));
}

torch::Tensor reduce_from_tp(const torch::Tensor& x, const TpGroup& tp) {
  if (tp.size == 1) return x;
  return ReduceFromTpFn::apply(x, ptr(tp));
}

torch::Tensor gather_last_dim(const torch::Tensor& x, const TpGroup& tp) {
  if (tp.size == 1) return x.detach();
  torch::Tensor parts = allgather(*tp.comm, x.detach().contiguous());  // (tp, ..., n)
  std::vector<torch::Tensor> chunks;
  for (int r = 0; r < tp.size; ++r) chunks.push_back(parts[r]);
  return torch::cat(chunks, -1);                                        // (..., n * tp)
}

torch::Tensor vocab_parallel_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                           const TpGroup& tp) {
  TORCH_CHECK(logits.dim() == 2 && targets.dim() == 1 && logits.size(0) == targets.size(0),
              "vocab_parallel_cross_entropy: logits (N, V/tp) and targets (N) expected");
  return VocabParallelCeFn::apply(logits, targets.to(torch::kInt64),
                                  tp.size == 1 ? int64_t{0} : ptr(tp), int64_t{tp.rank});
}

}  // namespace conflux::trainer
