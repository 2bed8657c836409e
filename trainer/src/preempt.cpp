// Signal handling for preemption (see preempt.h).
#include "conflux/trainer/preempt.h"

#include "conflux/core/error.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace conflux::trainer {
namespace {
std::atomic<int> g_flag{0};
struct sigaction g_old_usr1, g_old_term;
bool g_installed = false;

void on_signal(int) { g_flag.store(1); }
}  // namespace

void install_preemption_handlers() {
  if (g_installed) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, &g_old_usr1);
  sigaction(SIGTERM, &sa, &g_old_term);
  g_installed = true;
}

void uninstall_preemption_handlers() {
  if (!g_installed) return;
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
  g_installed = false;
}

bool preemption_requested() { return g_flag.load() != 0; }
void request_preemption() { g_flag.store(1); }
void clear_preemption() { g_flag.store(0); }

long long test_preempt_step() {
  const char* v = std::getenv("CONFLUX_TEST_PREEMPT_AT_STEP");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (*end != '\0' || n < 1) CONFLUX_THROW(UsageError, "CONFLUX_TEST_PREEMPT_AT_STEP='{}' must be a step number >= 1", v);
  return n;
}

}  // namespace conflux::trainer
