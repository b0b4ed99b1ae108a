// The SSE server bench_streams talks to: sse_h2_server in its own process
// (so that its memory never counts in ours), pinned to its own CPU, started
// once, stopped at exit; it stops by itself when our end of its stdin pipe
// closes, so a crash of ours never leaves it behind.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace barrage::streams {

struct StreamPeer {
  pid_t pid = 0;
  std::string ca_file;        // PEM of the CA that signed its certificate
  std::vector<int> ports;     // one per max-streams value asked for, in order
  std::vector<uint32_t> max_streams;
  int client_cpu = -1, server_cpu = -1;  // where this process and the server are pinned; -1 none

  // https://127.0.0.1:PORT/sse/<events>/<interval_ms>/<step_ms> on the
  // listener that announces `per_conn` streams per connection ("" if none does).
  std::string url(uint32_t per_conn, int events, int interval_ms, int step_ms) const;
};

// Starts the server pinned to `cpu` (-1: not pinned) with one listener per
// entry of max_streams; client_cpu is where the caller pinned itself. 0 on
// success, 1 on failure (reason on stderr).
int stream_peer_up(int cpu, const std::vector<uint32_t>& max_streams, int client_cpu);
void stream_peer_down() noexcept;
const StreamPeer& stream_peer() noexcept;

}  // namespace barrage::streams
