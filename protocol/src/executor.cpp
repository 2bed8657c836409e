// ExecutorRegistry and the built-in "reduce_sum" executor (real element-wise work on tensors,
// used by the protocol tests and benchmarks; evaluation/fit executors plug in the same way).
#include <conflux/protocol/executor.h>

#include <conflux/core/error.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstring>
#include <thread>

namespace conflux::protocol {
namespace {

template <typename T>
T load(const uint8_t* p, size_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}
template <typename T>
void store(uint8_t* p, size_t i, T v) {
  std::memcpy(p + i * sizeof(T), &v, sizeof(T));
}

// Element-wise left fold in type Acc, converting with In/Out functions.
template <typename Raw, typename Acc, typename ToAcc, typename FromAcc>
void fold(const std::vector<Tensor>& in, Tensor* out, ToAcc to_acc, FromAcc from_acc) {
  const size_t n = static_cast<size_t>(out->numel());
  uint8_t* dst = out->mutable_data();
  for (size_t i = 0; i < n; ++i) {
    Acc acc = to_acc(load<Raw>(in[0].data(), i));
    for (size_t k = 1; k < in.size(); ++k) acc = acc + to_acc(load<Raw>(in[k].data(), i));
    store<Raw>(dst, i, from_acc(acc));
  }
}

class ReduceSumExecutor : public TaskExecutor {
 public:
  TaskOutput execute(const TaskContext& ctx) override {
    auto params = nlohmann::json::parse(ctx.params.empty() ? "{}" : ctx.params, nullptr, false);
    if (params.is_discarded() || !params.is_object()) {
      CONFLUX_THROW(DataError, "reduce_sum: params are not a JSON object");
    }
    int64_t delay_ms = params.value("delay_ms", int64_t{0});
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
    while (std::chrono::steady_clock::now() < until) {
      if (ctx.cancelled()) CONFLUX_THROW(CommError, "reduce_sum: cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::vector<Tensor> all = ctx.shared;
    all.insert(all.end(), ctx.inputs.begin(), ctx.inputs.end());
    TaskOutput out;
    out.tensors.push_back(reduce_sum(all));
    out.summary = nlohmann::json{{"inputs", all.size()},
                                 {"elements", out.tensors[0].numel()}}
                      .dump();
    return out;
  }
  // Stateless: as many at once as the worker has slots.
  uint32_t slots() const override { return 1024; }
};

}  // namespace

wire::TaskErrorKind classify_task_error(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return wire::KIND_RESOURCE;
  const auto* err = dynamic_cast<const Error*>(&e);
  if (!err) return wire::KIND_INTERNAL;
  switch (err->kind()) {
    case ErrorKind::Data:
    case ErrorKind::Protocol: return wire::KIND_DATA;
    case ErrorKind::Config:
    case ErrorKind::Usage:
    case ErrorKind::Privacy: return wire::KIND_CONFIG;
    case ErrorKind::Io:
    case ErrorKind::Communication: return wire::KIND_RESOURCE;
    case ErrorKind::Internal: return wire::KIND_INTERNAL;
  }
  return wire::KIND_INTERNAL;
}

void ExecutorRegistry::add(const std::string& kind, std::shared_ptr<TaskExecutor> executor) {
  if (kind.empty() || !executor) CONFLUX_THROW(UsageError, "executor needs a kind and an object");
  by_kind_[kind] = std::move(executor);
}

std::shared_ptr<TaskExecutor> ExecutorRegistry::find(const std::string& kind) const {
  auto it = by_kind_.find(kind);
  return it == by_kind_.end() ? nullptr : it->second;
}

std::vector<std::string> ExecutorRegistry::kinds() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : by_kind_) out.push_back(k);
  return out;
}

void register_builtin_executors(ExecutorRegistry& registry) {
  registry.add("reduce_sum", std::make_shared<ReduceSumExecutor>());
}

Tensor reduce_sum(const std::vector<Tensor>& in) {
  if (in.empty()) CONFLUX_THROW(DataError, "reduce_sum needs at least one input tensor");
  for (const Tensor& t : in) {
    if (t.dtype() != in[0].dtype() || t.shape() != in[0].shape()) {
      CONFLUX_THROW(DataError, "reduce_sum: tensor '{}' differs in dtype or shape from '{}'",
                    t.name(), in[0].name());
    }
  }
  Tensor out = Tensor::allocate("sum", in[0].dtype(), in[0].shape());
  auto id = [](auto v) { return v; };
  switch (in[0].dtype()) {
    case DType::F32: fold<float, float>(in, &out, id, id); break;
    case DType::F64: fold<double, double>(in, &out, id, id); break;
    case DType::BF16: fold<uint16_t, float>(in, &out, bf16_to_float, float_to_bf16); break;
    case DType::F16: fold<uint16_t, float>(in, &out, f16_to_float, float_to_f16); break;
    case DType::I32:
      fold<uint32_t, uint32_t>(in, &out, id, id);  // two's complement wrap, no UB
      break;
    case DType::I64: fold<uint64_t, uint64_t>(in, &out, id, id); break;
    case DType::U8:
      fold<uint8_t, uint32_t>(in, &out, [](uint8_t v) { return uint32_t{v}; },
                              [](uint32_t v) { return static_cast<uint8_t>(v & 0xFF); });
      break;
  }
  return out;
}

}  // namespace conflux::protocol
