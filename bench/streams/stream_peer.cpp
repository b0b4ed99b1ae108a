// Starting and stopping sse_h2_server (see stream_peer.hpp).
#include "stream_peer.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace barrage::streams {
namespace {

StreamPeer g_peer;
int g_stdin = -1;  // write end of the server's stdin; closing it stops the server
char g_dir[] = "/tmp/barrage-streams-XXXXXX";
bool g_have_dir = false;

}  // namespace

std::string StreamPeer::url(uint32_t per_conn, int events, int interval_ms, int step_ms) const {
  for (size_t i = 0; i < max_streams.size(); ++i)
    if (max_streams[i] == per_conn)
      return "https://127.0.0.1:" + std::to_string(ports[i]) + "/sse/" + std::to_string(events) + "/" +
             std::to_string(interval_ms) + "/" + std::to_string(step_ms);
  return "";
}

int stream_peer_up(int cpu, const std::vector<uint32_t>& max_streams, int client_cpu) {
  g_peer.client_cpu = client_cpu;
  if (!mkdtemp(g_dir)) {
    std::perror("bench_streams: mkdtemp");
    return 1;
  }
  g_have_dir = true;
  g_peer.ca_file = std::string(g_dir) + "/ca.pem";
  g_peer.max_streams = max_streams;
  g_peer.server_cpu = cpu;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    std::perror("bench_streams: pipe");
    return 1;
  }
  std::vector<std::string> args{BARRAGE_SSE_SERVER, g_peer.ca_file};
  for (uint32_t m : max_streams) args.push_back(std::to_string(m));
  const pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    if (cpu >= 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  g_stdin = in[1];
  g_peer.pid = pid;
  FILE* f = fdopen(out[0], "r");
  for (size_t i = 0; i < max_streams.size(); ++i) {
    int port = 0;
    char line[64];  // line by line: fscanf's "\n" would wait for more input
    if (!f || !std::fgets(line, sizeof line, f) || std::sscanf(line, "port %d", &port) != 1) {
      std::fprintf(stderr, "bench_streams: %s did not start\n", BARRAGE_SSE_SERVER);
      if (f) std::fclose(f);
      stream_peer_down();
      return 1;
    }
    g_peer.ports.push_back(port);
  }
  std::fclose(f);
  return 0;
}

void stream_peer_down() noexcept {
  if (g_stdin >= 0) {
    close(g_stdin);
    g_stdin = -1;
  }
  if (g_peer.pid > 0) {
    kill(g_peer.pid, SIGTERM);
    int st = 0;
    waitpid(g_peer.pid, &st, 0);
    g_peer.pid = 0;
  }
  if (g_have_dir) {
    std::remove(g_peer.ca_file.c_str());
    rmdir(g_dir);
    g_have_dir = false;
  }
}

const StreamPeer& stream_peer() noexcept { return g_peer; }

}  // namespace barrage::streams
