// The round protocol every strategy shares (strategy.h): result validation, the layout, the
// round counter and the state's JSON envelope. Each strategy's maths is in its own file.
#include "conflux/federated/strategy.h"

#include "conflux/core/error.h"

#include <fmt/format.h>

namespace conflux::federated {

namespace {

Weights names_and_shapes(const Weights& w) {
  Weights layout;
  layout.reserve(w.size());
  for (const NamedTensor& t : w) layout.push_back({t.name, t.shape, {}});
  return layout;
}

}  // namespace

void Strategy::begin_round(const Weights* global) {
  if (global == nullptr && needs_global())
    CONFLUX_THROW(ConfigError, "strategy {} needs the current global weights (a server optimizer "
                  "steps from them)", name_);
  if (global != nullptr) {
    check_weights(*global, "the global model");
    layout_ = names_and_shapes(*global);
  } else {
    layout_.clear();
  }
  global_ = global;
  results_ = 0;
  in_round_ = true;
  on_begin();
}

void Strategy::add(ClientResult result) {
  if (!in_round_) CONFLUX_THROW(UsageError, "strategy {}: add() outside a round (call begin_round)", name_);
  if (result.num_examples < 1)
    CONFLUX_THROW(DataError, "{}: num_examples is {}; a result must count at least 1 example",
                  result.source, result.num_examples);
  check_weights(result.weights, result.source);
  if (global_ == nullptr && results_ == 0) {
    layout_ = names_and_shapes(result.weights);
    layout_name_ = result.source + " (the first result)";
  } else {
    match_layout(result.weights, layout_, result.source, global_ ? "the global model" : layout_name_);
  }
  ++results_;
  on_add(std::move(result));
}

Weights Strategy::finish() {
  if (!in_round_) CONFLUX_THROW(UsageError, "strategy {}: finish() outside a round", name_);
  if (results_ == 0) CONFLUX_THROW(DataError, "strategy {}: no results to aggregate", name_);
  Weights next = on_finish(global_);
  in_round_ = false;
  global_ = nullptr;
  ++rounds_;
  return next;
}

StrategyState Strategy::save_state() const {
  StrategyState s;
  s.meta = {{"strategy", name_}, {"rounds", rounds_}, {"params", params_}};
  save_tensors(s.tensors);
  return s;
}

void Strategy::load_state(const StrategyState& state) {
  if (!state.meta.is_object() || !state.meta.contains("strategy") || !state.meta.contains("rounds"))
    CONFLUX_THROW(DataError, "strategy state: meta needs 'strategy' and 'rounds' (got {})", state.meta.dump());
  const auto& who = state.meta.at("strategy");
  if (!who.is_string() || who.get<std::string>() != name_)
    CONFLUX_THROW(DataError, "strategy state belongs to strategy {}, not {}", who.dump(), name_);
  const auto& rounds = state.meta.at("rounds");
  if (!rounds.is_number_unsigned())
    CONFLUX_THROW(DataError, "strategy state: 'rounds' must be a non-negative integer (got {})", rounds.dump());
  check_weights(state.tensors, "strategy state");
  on_reset();
  load_tensors(state.tensors);
  rounds_ = rounds.get<uint64_t>();
}

}  // namespace conflux::federated
