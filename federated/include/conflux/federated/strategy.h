// Aggregation strategies: how the federated server turns a round's client results into the next
// global model. The maths is Flower 1.42's (flwr.server.strategy), checked against it by
// tests/federated (gen_reference.py runs Flower's own functions).
//
// A round is begin_round(global) -> add(result)... -> finish() -> new global weights:
//   auto s = make_strategy("fedadam", {"strategy.fedadam.eta=0.05"});
//   s->begin_round(&global);
//   for (auto& r : results) s->add(std::move(r));   // e.g. from the job layer's ResultSink
//   global = s->finish();
// add() validates each result (num_examples >= 1, finite values, the global's tensor names and
// shapes; DataError naming the result's source and the tensor) before the strategy sees it.
//
// Memory: the linear strategies (fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi) fold
// each result into one float32 running sum as it arrives and drop it: O(model), whatever the
// number of clients. The robust ones need every result at once and hold them all
// (O(clients x model)): median, trimmed_avg; krum and bulyan also keep the clients x clients
// squared distances, computed as results arrive.
//
// Server state that lives across rounds (the round counter, FedAvgM's momentum, the FedOpt
// moments m and v) is saved as named tensors plus JSON (save_state / load_state), to be stored
// with a round checkpoint. Parameters are config keys strategy.<name>.<param> with Flower's
// names and defaults, declared once per strategy (a bind() through ConfigBinder).
// Thread safety: a strategy is used by one thread at a time.
#pragma once

#include "conflux/core/config.h"
#include "conflux/federated/weights.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace conflux::federated {

class StrategyParams;

// Server state between rounds.
struct StrategyState {
  nlohmann::json meta;  // {"strategy": name, "rounds": completed rounds, ...}
  Weights tensors;      // e.g. "m/<tensor>", "v/<tensor>", "momentum/<tensor>"
};

class Strategy {
 public:
  explicit Strategy(std::string name) : name_(std::move(name)) {}
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  const std::string& name() const { return name_; }
  // Effective parameters as JSON ({"eta": 0.1, ...}), for logs and round records.
  const nlohmann::json& params() const { return params_; }

  // Starts a round. `global`: the current global weights (must outlive the round), or nullptr
  // when there is none: the first result then defines the layout, and the strategies that
  // need the global (fedavgm with a server optimizer, fedadagrad, fedadam, fedyogi) refuse.
  void begin_round(const Weights* global);
  // Validates one result (see above) and folds it in or holds it.
  void add(ClientResult result);
  // The new global weights, in the layout's order. DataError if no result was added or the
  // strategy cannot aggregate this many (krum's to_keep, bulyan's 4f+3). Ends the round.
  Weights finish();

  size_t results_in_round() const { return results_; }
  uint64_t rounds_completed() const { return rounds_; }

  StrategyState save_state() const;
  // DataError if the state belongs to another strategy or its tensors do not fit.
  void load_state(const StrategyState& state);

 protected:
  virtual bool needs_global() const { return false; }
  virtual void on_begin() {}
  virtual void on_add(ClientResult&& result) = 0;
  virtual Weights on_finish(const Weights* global) = 0;
  virtual void save_tensors(Weights& out) const {}
  virtual void load_tensors(const Weights& in) {}
  virtual void on_reset() {}  // load_state: back to no tensors

  const Weights& layout() const { return layout_; }  // names and shapes (values empty)
  uint64_t server_round() const { return rounds_ + 1; }  // Flower's 1-based server_round

 private:
  friend std::unique_ptr<Strategy> make_strategy(const std::string&, StrategyParams&);
  std::string name_;
  nlohmann::json params_ = nlohmann::json::object();
  const Weights* global_ = nullptr;
  Weights layout_;
  std::string layout_name_;  // where layout_ came from, for errors
  bool in_round_ = false;
  size_t results_ = 0;
  uint64_t rounds_ = 0;
};

// A strategy's parameters: declared once (bind), validated by ConfigBinder::finish, then make().
class StrategyParams {
 public:
  virtual ~StrategyParams() = default;
  virtual void bind(ConfigBinder& b) = 0;  // declares strategy.<name>.<param>
  virtual std::unique_ptr<Strategy> make() const = 0;
};

struct StrategyInfo {
  std::string name;
  std::string summary;
  std::unique_ptr<StrategyParams> (*params)();
};

// The one table of strategies (src/registry.cpp).
const std::vector<StrategyInfo>& strategy_registry();
std::vector<std::string> strategy_names();
// ConfigError naming the known strategies if `name` is unknown.
std::unique_ptr<StrategyParams> strategy_params(const std::string& name);

// Binds `name`'s parameters from `doc` (where only strategy.<name>.* keys may appear: anything
// else is an unknown key, ConfigError), validates them and builds the strategy.
std::unique_ptr<Strategy> make_strategy(const std::string& name, std::shared_ptr<ConfigDocument> doc);
// The same from parameters already bound (and validated) inside a larger config, e.g.
// `conflux federate`'s, which binds strategy_params(name) next to its own keys.
std::unique_ptr<Strategy> make_strategy(const std::string& name, StrategyParams& bound);
// The same from "strategy.<name>.<param>=value" overrides (`--set`).
std::unique_ptr<Strategy> make_strategy(const std::string& name,
                                        const std::vector<std::string>& overrides = {});

}  // namespace conflux::federated
