// Blocking and synchronous waiting for the two signals that mean "stop".
#include "stop_signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>

namespace barrage::cli {
namespace {

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void block_stop_signals() {
  sigset_t set = stop_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A shell starts background jobs with SIGINT ignored, and an ignored
  // signal is discarded instead of left pending for sigwait. Stopping on
  // request matters more here than that convention; the default action can
  // never run because the signals stay blocked.
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
}

int wait_stop_signal() {
  sigset_t set = stop_set();
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

int take_stop_signal() {
  sigset_t set = stop_set();
  timespec zero{};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &zero);
    if (sig > 0) return sig;
    if (errno != EINTR) return 0;
  }
}

}  // namespace barrage::cli
