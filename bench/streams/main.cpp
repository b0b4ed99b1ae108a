// bench_streams' main: pins this process to one CPU and sse_h2_server to
// another, starts the server once (listeners announcing 100 and 10 streams
// per connection), runs the benchmarks, stops it, and exits 1 when any
// benchmark reported a wrong result.
#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "suite.hpp"
#include "stream_peer.hpp"

int main(int argc, char** argv) {
  using namespace barrage;
  bool listing = false;
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0 &&
        std::strcmp(argv[i], "--benchmark_list_tests=false") != 0)
      listing = true;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!listing) {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      for (int i = 0; i < CPU_SETSIZE && cpus.size() < 2; ++i)
        if (CPU_ISSET(i, &set)) cpus.push_back(i);
    const int self_cpu = cpus.size() == 2 ? cpus[0] : -1, server_cpu = cpus.size() == 2 ? cpus[1] : -1;
    if (self_cpu >= 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(self_cpu, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0) std::perror("bench_streams: sched_setaffinity");
    }
    if (streams::stream_peer_up(server_cpu, {100, 10}, self_cpu) != 0) return 1;
    std::atexit(streams::stream_peer_down);
    std::fprintf(stderr, "bench_streams: sse_h2_server pid %d on CPU %d; this process on CPU %d%s\n",
                 int(streams::stream_peer().pid), server_cpu, self_cpu,
                 streams::quick() ? "; quick mode (BARRAGE_E2E_QUICK): figures mean nothing" : "");
  }
  const size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  streams::stream_peer_down();
  if (ran == 0) {
    std::fprintf(stderr, "no benchmark matched --benchmark_filter\n");
    return 1;
  }
  return streams::g_failed ? 1 : 0;
}
