// `conflux` entry point: finds the verb, runs it, and is the only place that turns errors into
// exit codes and a message for the user.
#include "conflux/cli/cli.h"
#include "conflux/core/build_config.h"
#include "conflux/core/error.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>

namespace {

void print_help() {
  auto verbs = conflux::cli::registry();
  std::sort(verbs.begin(), verbs.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::cout << "conflux " << CONFLUX_VERSION
            << ": curate, train, evaluate and federate generative models on HPC clusters.\n\n"
               "usage: conflux VERB [options]    (conflux VERB --help for options and an example)\n\n"
               "verbs:\n";
  for (auto& v : verbs) std::printf("  %-20s %s\n", v.name.c_str(), v.summary.c_str());
  std::cout << "\nexit codes: 0 ok, 1 user error (config, data, I/O), 2 usage, 3 communication or peer "
               "failure,\n            4 internal error, 75 preempted (checkpoint written, requeue)\n";
}

// In an MPI job of several ranks, one rank's error must not leave the others waiting: the message
// (naming this rank, and for a CommError the stalled or diverging peer and the collective) is
// already on stderr; flush and MPI_Abort the job with the error's exit code (3 for a CommError).
// An error that unwinds past the ProcessGrid, or any communication failure, leaves MPI
// initialised on purpose (the grid skips MPI_Finalize and the collective teardown a stalled peer
// would block), so this is where every such job ends.
[[noreturn]] void fail(int code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::fflush(stdout);
    std::fflush(stderr);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    MPI_Finalize();
  }
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    try {
      conflux::cli::load_plugins();
    } catch (const conflux::Error& e) {
      std::cerr << conflux::describe_for_user(e) << std::endl;
    }
    print_help();
    return args.empty() ? conflux::kExitUsage : 0;
  }
  if (args[0] == "--version" || args[0] == "version") {
    std::cout << "conflux " << CONFLUX_VERSION << "\n";
    return 0;
  }
  const conflux::cli::Verb* verb = nullptr;
  size_t consumed = 0;
  auto find = [&] {
    for (auto& v : conflux::cli::registry()) {
      if (args.size() >= 2 && v.name == args[0] + " " + args[1]) {
        verb = &v;
        consumed = 2;
        return;
      }
    }
    for (auto& v : conflux::cli::registry()) {
      if (v.name == args[0]) {
        verb = &v;
        consumed = 1;
        return;
      }
    }
  };
  find();
  if (!verb) {  // perhaps one of the libtorch verbs, kept in the plugin
    try {
      conflux::cli::load_plugins();
    } catch (const conflux::Error& e) {
      std::cerr << conflux::describe_for_user(e) << std::endl;
      return conflux::exit_code(e.kind());
    }
    find();
  }
  if (!verb) {
    std::cerr << "conflux: unknown verb '" << args[0] << "'";
    std::vector<std::string> subs;
    for (auto& v : conflux::cli::registry())
      if (v.name.rfind(args[0] + " ", 0) == 0) subs.push_back(v.name);
    if (!subs.empty()) {
      std::cerr << "; did you mean one of:";
      for (auto& s : subs) std::cerr << " '" << s << "'";
    }
    std::cerr << " (conflux --help lists verbs)\n";
    return conflux::kExitUsage;
  }
  try {
    int rc = verb->run(conflux::cli::Args(args.begin() + consumed, args.end()));
    return rc;
  } catch (const conflux::Error& e) {
    std::cerr << conflux::describe_for_user(e) << std::endl;
    fail(conflux::exit_code(e.kind()));
  } catch (const std::exception& e) {
    std::cerr << "conflux: internal error: " << e.what()
              << "\nThis is a bug in Conflux; please report it with the log." << std::endl;
    fail(conflux::kExitInternal);
  }
}
