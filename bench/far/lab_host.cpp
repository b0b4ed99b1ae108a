// barrage_lab_host: holds a NetLab (tests/support/netlab/netlab.hpp) open for
// a script. It makes the namespace and the delay line, prints one line
//   ready netns=NAME local=ADDR peer=ADDR
// and then passes each line read on stdin to the delay line (control.hpp's
// commands: `loss 0.01`, `stats`, ...), printing its reply. When stdin closes,
// or on SIGTERM/SIGINT/SIGHUP, the lab ends: whatever runs in the namespace
// is killed and the namespace deleted. If this process is killed outright,
// the NetLab guardian does the same. bench/far/run drives it.
//
// Usage: barrage_lab_host [--delay-ms D] [--loss P] [--seed S]
// (D: one way, so RTT = 2 D). Exit 77 when the machine cannot host a lab.
#include "netlab.hpp"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;  // set by the signal handler only
void on_signal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  using barrage::netlab::NetLab;
  barrage::netlab::NetLabOptions o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const double v = std::strtod(argv[i + 1], nullptr);
    if (k == "--delay-ms") o.link.delay_ms = v;
    else if (k == "--loss") o.link.loss = v;
    else if (k == "--seed") o.seed = uint64_t(v);
    else {
      std::fprintf(stderr, "usage: barrage_lab_host [--delay-ms D] [--loss P] [--seed S]\n");
      return 2;
    }
  }
  if (const std::string why = NetLab::unavailable(); !why.empty()) {
    std::fprintf(stderr, "barrage_lab_host: no network lab here: %s\n", why.c_str());
    return 77;
  }
  // No SA_RESTART: a signal interrupts the read below, and the lab ends.
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);

  std::string err;
  auto lab = NetLab::create(o, &err);
  if (!lab) {
    std::fprintf(stderr, "barrage_lab_host: %s\n", err.c_str());
    return 1;
  }
  std::printf("ready netns=%s local=%s peer=%s\n", lab->netns().c_str(), lab->local_address().c_str(),
              lab->peer_address().c_str());
  std::fflush(stdout);
  char line[512];
  while (!g_stop && std::fgets(line, sizeof line, stdin)) {
    line[std::strcspn(line, "\n")] = '\0';
    if (!*line) continue;
    std::printf("%s\n", lab->control(line).c_str());
    std::fflush(stdout);
  }
  return 0;  // ~NetLab removes everything
}
