// `conflux federate aggregate`: one round of a federated aggregation strategy applied offline to
// given client weights (safetensors files), for audits, replaying a round and tests. Torch-free:
// conflux_federated does the maths (exact against Flower 1.42) and the float32 safetensors I/O.
//
// Each input is FILE:NUM_EXAMPLES. The output is written atomically; nothing is printed but
// errors. A result that does not match the others (names, shapes, dtype), holds NaN/Inf, or has a
// NUM_EXAMPLES that is not a positive integer is a data error naming the file (and the tensor):
// exit 1. Stateful strategies (fedavgm, fedadagrad, fedadam, fedyogi) need --global and can carry
// their server state between invocations with --state-in / --state-out.
#include "conflux/cli/cli.h"
#include "conflux/core/error.h"
#include "conflux/federated/safetensors_io.h"
#include "conflux/federated/strategy.h"

#include <fmt/format.h>

#include <string>
#include <vector>

namespace {

namespace po = conflux::cli::po;
namespace cf = conflux::federated;

struct Input {
  std::string path;
  uint64_t num_examples = 0;
};

// "FILE:NUM_EXAMPLES" split at the last colon (file names may contain colons).
Input parse_input(const std::string& arg) {
  const size_t colon = arg.rfind(':');
  if (colon == std::string::npos || colon == 0)
    CONFLUX_THROW(UsageError, "conflux federate aggregate: input '{}' must be FILE:NUM_EXAMPLES", arg);
  Input in{arg.substr(0, colon), 0};
  const std::string n = arg.substr(colon + 1);
  bool digits = !n.empty() && n.size() <= 19;
  for (char c : n) digits = digits && c >= '0' && c <= '9';
  if (!digits || std::stoull(n) == 0)
    CONFLUX_THROW(DataError, "{}: NUM_EXAMPLES '{}' is not a positive integer", in.path, n);
  in.num_examples = std::stoull(n);
  return in;
}

int run_aggregate(const conflux::cli::Args& args) {
  std::string strategy_name, out, global_path, state_in, state_out;
  std::vector<std::string> inputs;
  po::options_description opts("options");
  opts.add_options()
      ("strategy", po::value(&strategy_name)->required(),
       "fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi, median, trimmed_avg, krum or bulyan")
      ("set", po::value<std::vector<std::string>>()->composing(),
       "a strategy parameter: --set strategy.NAME.PARAM=VALUE (repeatable; Flower's names)")
      ("out", po::value(&out)->required(), "the new global weights (safetensors, float32)")
      ("global", po::value(&global_path), "the current global weights (needed by server optimizers)")
      ("state-in", po::value(&state_in), "server state saved by a previous --state-out")
      ("state-out", po::value(&state_out), "write the server state after this round")
      ("input", po::value(&inputs)->composing(), "FILE:NUM_EXAMPLES (positional, one per client)");
  po::positional_options_description pos;
  pos.add("input", -1);
  po::variables_map vm;
  if (!conflux::cli::parse(args, opts, &pos, vm,
                           {"federate aggregate",
                            "--strategy NAME [--set strategy.NAME.k=v ...] --out OUT.safetensors "
                            "[--global GLOBAL.safetensors] [--state-in S] [--state-out S] IN.safetensors:NUM_EXAMPLES ...",
                            "Applies one round of a federated aggregation strategy to the clients' weights "
                            "(float32 safetensors, each with its example count) and writes the new global "
                            "weights. The maths equals Flower 1.42's strategies (docs/federated.md).",
                            "conflux federate aggregate --strategy trimmed_avg --set strategy.trimmed_avg.beta=0.1 "
                            "--out global.safetensors a.safetensors:120 b.safetensors:80 c.safetensors:95"}))
    return 0;
  if (inputs.empty())
    CONFLUX_THROW(UsageError, "conflux federate aggregate: give at least one IN.safetensors:NUM_EXAMPLES");
  std::vector<Input> parsed;
  for (const std::string& a : inputs) parsed.push_back(parse_input(a));

  auto strategy = cf::make_strategy(strategy_name, conflux::cli::overrides(vm));
  if (!state_in.empty()) strategy->load_state(cf::read_strategy_state(state_in));
  cf::Weights global;
  const bool have_global = !global_path.empty();
  if (have_global) {
    global = cf::read_weights(global_path).weights;
    cf::check_weights(global, global_path);  // NaN/Inf named by the file, not "the global model"
  }
  strategy->begin_round(have_global ? &global : nullptr);
  for (const Input& in : parsed)  // one file in memory at a time for the linear strategies
    strategy->add({cf::read_weights(in.path).weights, in.num_examples, in.path});
  const cf::Weights next = strategy->finish();
  cf::write_weights(out, next,
                    {{"conflux.strategy", strategy_name}, {"conflux.strategy_params", strategy->params().dump()}});
  if (!state_out.empty()) cf::write_strategy_state(state_out, strategy->save_state());
  return 0;
}

CONFLUX_VERB("federate aggregate", "one round of a federated aggregation strategy on safetensors files",
             run_aggregate);

}  // namespace
