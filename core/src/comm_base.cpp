// Progress thread, signatures and failure latching shared by the communicator back ends.
#include "comm_base.h"

#include "conflux/core/error.h"
#include "conflux/core/rng.h"
#include "mpi/shm_group.h"

#include <cstdint>

namespace conflux::detail {

uint64_t OpDesc::signature() const {
  struct {
    char kind[16];
    uint64_t count;
    int32_t arg;
    uint8_t dtype;
  } key{};
  std::snprintf(key.kind, sizeof(key.kind), "%s", kind);
  key.count = count;
  key.arg = arg;
  key.dtype = static_cast<uint8_t>(dtype);
  return hash64(&key, sizeof(key), 0x636f6e666c7578ull);
}

std::string OpDesc::describe() const {
  std::string k = kind;
  if (k == "barrier") return "barrier()";
  std::string extra;
  if (k.rfind("allreduce", 0) == 0 || k == "reduce_scatter") extra = fmt::format(", {}", reduce_op_name(static_cast<ReduceOp>(arg)));
  if (k == "broadcast") extra = fmt::format(", root {}", arg);
  return fmt::format("{}({} x {}{})", kind, dtype_name(dtype), count, extra);
}

std::string OpDesc::where() const {
  std::string f = site.file ? site.file : "?";
  for (const char* root : {"/tests/", "/bench/", "/core/", "/dataplane/", "/trainer/", "/evaluator/", "/coordinator/", "/worker/",
                           "/protocol/"}) {
    auto pos = f.rfind(root);
    if (pos != std::string::npos) {
      f = f.substr(pos + 1);
      break;
    }
  }
  return fmt::format("{}:{}", f, site.line);
}

struct CommBase::Item : public Work {
  OpDesc desc;
  Fn fn;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::exception_ptr error;

  void wait() override {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return finished; });
    if (error) std::rethrow_exception(error);
  }
  bool done() const override {
    std::lock_guard<std::mutex> lock(mu);
    return finished;
  }
  void complete(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mu);
    error = e;
    finished = true;
    cv.notify_all();
  }
};

CommBase::CommBase(CommOptions options) : Communicator(std::move(options)) {
  if (!options_.failure) options_.failure = std::make_shared<CommFailure>();
}

CommBase::~CommBase() { shutdown(); }

bool CommBase::abandon_teardown() const { return broken() || std::uncaught_exceptions() > 0; }

void CommBase::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CommBase::execute(const OpDesc& desc, const Fn& fn) {
  if (broken())
    CONFLUX_THROW(CommError, "communicator '{}' is unusable after an earlier failure ({}); {} at {} not run",
                  name(), options_.failure->what(), desc.describe(), desc.where());
  try {
    fn();
  } catch (const std::exception& e) {
    options_.failure->set(e.what());
    throw;
  }
}

WorkHandle CommBase::submit(const OpDesc& desc, Fn fn) {
  auto item = std::make_shared<Item>();
  item->desc = desc;
  item->fn = std::move(fn);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) CONFLUX_THROW(InternalError, "communicator '{}' used after shutdown", name());
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    queue_.push_back(item);
    ++in_flight_;
  }
  cv_.notify_all();
  return item;
}

void CommBase::run(const OpDesc& desc, Fn fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    drained_cv_.wait(lock, [&] { return in_flight_ == 0; });
  }
  execute(desc, fn);
}

void CommBase::loop() {
  Backoff::mark_progress_thread();
  for (;;) {
    std::shared_ptr<Item> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      item = queue_.front();
      queue_.pop_front();
    }
    std::exception_ptr err;
    try {
      execute(item->desc, item->fn);
    } catch (...) {
      err = std::current_exception();
    }
    item->complete(err);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    drained_cv_.notify_all();
  }
}

}  // namespace conflux::detail
