// The nginx the end-to-end suite talks to: started once per process with
// tests/nginx/nginx_peer.py, stopped at exit, and stopped by a small guardian
// process if this one dies any other way (crash, signal, sanitizer abort).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace barrage::e2e {

struct Peer {
  int port = 0;
  std::string ca;              // the test CA (PEM) that signed nginx's certificate
  pid_t master = 0;            // nginx master process
  std::vector<pid_t> workers;  // its worker processes
  std::string body;            // the exact answer of /, /close and /sleep/N

  // https://localhost:PORT + path
  std::string url(const char* path) const;
};

// Starts nginx pinned to `cpu` (-1: not pinned). Returns 0 on success, 77
// when nginx is not installed, 1 on any other failure (reason on stderr).
int peer_up(int cpu);
// Stops nginx and removes its directory. Safe to call more than once.
void peer_down() noexcept;
// The running peer; valid between peer_up and peer_down.
const Peer& peer() noexcept;
// CPU time (µs) nginx's workers have used so far.
int64_t peer_cpu_us() noexcept;

}  // namespace barrage::e2e
