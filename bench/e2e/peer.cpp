// Starts and stops the nginx peer through tests/nginx/nginx_peer.py (see
// peer.hpp). The helper is found through $BARRAGE_NGINX_PEER or the source
// path Meson compiled in.
#include "peer.hpp"

#include "measure.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

extern char** environ;

namespace barrage::e2e {
namespace {

Peer g_peer;
std::string g_dir;     // nginx_peer.py's prefix; empty when nothing runs
int g_guardian = -1;   // write end of the guardian's pipe

const char* script() {
  const char* s = std::getenv("BARRAGE_NGINX_PEER");
  return s && *s ? s : BARRAGE_NGINX_PEER;
}

// Runs python3 nginx_peer.py ARGS... and returns its exit status (-1 when it
// could not be run).
int run_peer_script(std::vector<std::string> args) {
  args.insert(args.begin(), {"python3", script()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, "python3", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A child in its own session that waits on a pipe only we write to. Our exit
// for any reason closes the pipe; unless peer_down wrote its "done" byte
// first, the guardian then runs `nginx_peer.py down`. Its own session keeps
// it out of the process-group signals (Ctrl-C, meson's timeout kill) meant
// for us.
void start_guardian(const std::string& dir) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid == 0) {
    setsid();
    close(fds[1]);
    // Let go of our stdout/stderr so whoever reads them is not held open.
    const int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    char c;
    ssize_t n;
    while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR) {
    }
    if (n == 1) _exit(0);
    const char* argv[] = {"python3", script(), "down", dir.c_str(), nullptr};
    execvp("python3", const_cast<char**>(argv));
    _exit(127);
  }
  close(fds[0]);
  g_guardian = fds[1];
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    const std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
    const size_t paren = stat.rfind(')');
    int ppid = 0;
    if (paren != std::string::npos && std::sscanf(stat.c_str() + paren + 1, " %*c %d", &ppid) == 1 &&
        ppid == parent)
      out.push_back(pid);
  }
  closedir(d);
  return out;
}

}  // namespace

std::string Peer::url(const char* path) const {
  return "https://localhost:" + std::to_string(port) + path;
}

int peer_up(int cpu) {
  char tmpl[] = "/tmp/barrage-e2e-nginx-XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("bench_e2e: mkdtemp");
    return 1;
  }
  g_dir = tmpl;
  start_guardian(g_dir);
  std::vector<std::string> args{"up", g_dir};
  if (cpu >= 0) args.insert(args.end(), {"--cpu", std::to_string(cpu)});
  args.push_back("--h2");  // offered with ALPN; clients choose (ClientOptions::http_version)
  const int rc = run_peer_script(args);
  if (rc != 0) {
    std::fprintf(stderr, "bench_e2e: %s up exited %d\n", script(), rc);
    peer_down();
    return rc == 77 ? 77 : 1;
  }
  std::istringstream env(read_file(g_dir + "/peer.env"));
  for (std::string line; std::getline(env, line);) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "PORT") g_peer.port = std::atoi(value.c_str());
    if (key == "CA") g_peer.ca = value;
    if (key == "PID") g_peer.master = std::atoi(value.c_str());
  }
  g_peer.body = read_file(g_dir + "/body.json");
  g_peer.workers = children_of(g_peer.master);
  if (g_peer.port <= 0 || g_peer.ca.empty() || g_peer.master <= 0 || g_peer.body.empty() ||
      g_peer.workers.empty()) {
    std::fprintf(stderr, "bench_e2e: %s/peer.env or body.json incomplete, or no nginx worker\n",
                 g_dir.c_str());
    peer_down();
    return 1;
  }
  return 0;
}

void peer_down() noexcept {
  if (g_dir.empty()) return;
  run_peer_script({"down", g_dir});
  rmdir(g_dir.c_str());  // in case the helper could not remove it (already gone: harmless)
  g_dir.clear();
  if (g_guardian >= 0) {
    const char done = 'd';
    (void)!write(g_guardian, &done, 1);
    close(g_guardian);
    g_guardian = -1;
  }
}

const Peer& peer() noexcept { return g_peer; }

int64_t peer_cpu_us() noexcept {
  int64_t sum = 0;
  for (pid_t w : g_peer.workers) {
    const int64_t us = proc_cpu_us(w);
    if (us > 0) sum += us;
  }
  return sum;
}

}  // namespace barrage::e2e
