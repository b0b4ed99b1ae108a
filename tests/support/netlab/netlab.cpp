// The NetLab fixture: namespace, delay line, guardian, servers (netlab.hpp).
#include "netlab.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

extern char** environ;

namespace barrage::netlab {
namespace {

using Clock = std::chrono::steady_clock;

const char* delay_line_path() {
  const char* p = std::getenv("BARRAGE_DELAY_LINE");
  return p && *p ? p : BARRAGE_DELAY_LINE;
}

std::string netns_path(const std::string& name) { return "/var/run/netns/" + name; }

bool have_ip_command() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (access(p, X_OK) == 0) return true;
  return false;
}

std::vector<char*> c_argv(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  v.push_back(nullptr);
  return v;
}

// Waits up to `limit` for pid; true when it was reaped.
bool reap(pid_t pid, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  for (;;) {
    int status;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void end_process(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  if (!reap(pid, grace)) {
    kill(pid, SIGKILL);
    reap(pid, std::chrono::seconds(5));
  }
}

// Runs argv to completion, output to ours; its exit status, -1 if it could not run.
int run_command(std::vector<std::string> args) {
  pid_t pid;
  auto argv = c_argv(args);
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// posix_spawn with stdin, stdout and stderr set (-1: /dev/null for stdin and
// stdout, ours for stderr) and optionally a new session.
pid_t spawn_with(std::vector<std::string> args, int in_fd, int out_fd, bool quiet, bool new_session,
                 std::string* err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  else posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  if (quiet) posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t at;
  posix_spawnattr_init(&at);
  if (new_session) posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
  pid_t pid = -1;
  auto argv = c_argv(args);
  const int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc != 0) {
    *err = "cannot run " + args[0] + ": " + std::strerror(rc);
    return -1;
  }
  return pid;
}

// Reads one line from fd into *line (bytes after it stay in *pending).
bool read_line(int fd, std::string* pending, std::string* line, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  for (;;) {
    const size_t nl = pending->find('\n');
    if (nl != std::string::npos) {
      *line = pending->substr(0, nl);
      pending->erase(0, nl + 1);
      return true;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, int(left)) < 0 && errno != EINTR) return false;
    if (!(p.revents & (POLLIN | POLLHUP))) continue;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    pending->append(buf, size_t(n));
  }
}

std::string hex4(unsigned k) {
  char b[8];
  std::snprintf(b, sizeof b, "%04x", k & 0xffffu);
  return b;
}

std::string ipv4_text(uint32_t host_order) {
  return std::to_string(host_order >> 24) + "." + std::to_string((host_order >> 16) & 255) + "." +
         std::to_string((host_order >> 8) & 255) + "." + std::to_string(host_order & 255);
}

// Kills whatever runs in the namespace and deletes it, unless the owner
// wrote "done" first. $1 is the namespace.
constexpr const char kGuardianScript[] =
    "read -r line; [ \"$line\" = done ] && exit 0; "
    "for p in $(ip netns pids \"$1\"); do kill -9 \"$p\"; done; "
    "sleep 0.2; ip netns del \"$1\"; exit 0";

}  // namespace

std::vector<pid_t> pids_in_netns(const std::string& name) {
  std::vector<pid_t> out;
  struct stat ns {};
  if (stat(netns_path(name).c_str(), &ns) != 0) return out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    struct stat st {};
    if (stat(("/proc/" + std::string(e->d_name) + "/ns/net").c_str(), &st) == 0 && st.st_ino == ns.st_ino &&
        st.st_dev == ns.st_dev)
      out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::string NetLab::unavailable() {
  if (geteuid() != 0) return "needs root (network namespaces and TUN devices)";
  if (access("/dev/net/tun", R_OK | W_OK) != 0) return "no usable /dev/net/tun";
  if (!have_ip_command()) return "no `ip` command (Debian package iproute2)";
  if (access(delay_line_path(), X_OK) != 0) return std::string("delay line not built: ") + delay_line_path();
  return "";
}

std::unique_ptr<NetLab> NetLab::create(const NetLabOptions& options, std::string* err) {
  std::string why = unavailable();
  if (!why.empty()) {
    *err = why;
    return nullptr;
  }
  std::unique_ptr<NetLab> lab(new NetLab());
  if (!lab->start(options, err)) return nullptr;  // ~NetLab removes what start made
  return lab;
}

bool NetLab::start(const NetLabOptions& o, std::string* err) {
  // Names and addresses from our pid and a per-process count, skipping any a
  // live lab holds; 32,768 /30-sized slots of 198.18.0.0/15.
  static std::atomic<unsigned> next{0};
  const unsigned pid = unsigned(getpid());
  for (int attempt = 0;; ++attempt) {
    if (attempt == 64) {
      *err = "no free namespace name or address";
      return false;
    }
    const unsigned n = next++;
    const unsigned k = (pid * 8 + n) % 32768;
    netns_ = "brgnl-" + std::to_string(pid) + "-" + std::to_string(n);
    local_if_ = "brgnl" + hex4(k) + "a";
    ns_if_ = "brgnl" + hex4(k) + "b";
    if (access(netns_path(netns_).c_str(), F_OK) == 0 || if_nametoindex(local_if_.c_str()) != 0) continue;
    const uint32_t base = (198u << 24 | 18u << 16) + 4 * k;
    local_ = ipv4_text(base + 1);
    peer_ = ipv4_text(base + 2);
    break;
  }
  if (run_command({"ip", "netns", "add", netns_}) != 0) {
    *err = "`ip netns add " + netns_ + "` failed";
    return false;
  }
  netns_made_ = true;

  int g[2];
  if (pipe2(g, O_CLOEXEC) != 0) return *err = "pipe failed", false;
  guardian_ = spawn_with({"sh", "-c", kGuardianScript, "netlab-guardian", netns_}, g[0], -1, true, true, err);
  close(g[0]);
  guardian_fd_ = g[1];
  if (guardian_ < 0) return false;

  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return *err = "pipe failed", false;
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return *err = "pipe failed", false;
  }
  std::vector<std::string> args{delay_line_path(), "--netns", netns_, "--local-if", local_if_, "--ns-if", ns_if_,
                                "--local", local_, "--peer", peer_, "--mtu", std::to_string(o.mtu),
                                "--seed", std::to_string(o.seed)};
  auto setting = [&](const char* flag, double v) {
    std::ostringstream s;
    s << v;
    args.insert(args.end(), {flag, s.str()});
  };
  setting("--delay", o.link.delay_ms);
  setting("--jitter", o.link.jitter_ms);
  setting("--loss", o.link.loss);
  setting("--rate", double(o.link.rate_bps));
  if (o.link.queue_bytes > 0) setting("--queue", double(o.link.queue_bytes));
  delay_line_ = spawn_with(args, in[0], out[1], false, false, err);
  close(in[0]);
  close(out[1]);
  control_in_ = in[1];
  control_out_ = out[0];
  if (delay_line_ < 0) return false;
  std::string line;
  if (!read_line(control_out_, &pending_, &line, std::chrono::seconds(10)) || line != "ready") {
    *err = "the delay line did not start (see its message above)";
    return false;
  }
  return true;
}

NetLab::~NetLab() { stop(); }

void NetLab::stop() noexcept {
  for (pid_t p : spawned_) kill(p, SIGTERM);
  for (pid_t p : spawned_) end_process(p, std::chrono::seconds(3));
  spawned_.clear();
  if (control_in_ >= 0) close(control_in_);  // EOF: the delay line exits
  control_in_ = -1;
  end_process(delay_line_, std::chrono::seconds(3));
  delay_line_ = -1;
  if (control_out_ >= 0) close(control_out_);
  control_out_ = -1;
  if (netns_made_) {
    for (pid_t p : pids_in_netns(netns_))
      if (p != getpid()) kill(p, SIGKILL);
    run_command({"ip", "netns", "del", netns_});
    netns_made_ = false;
  }
  if (guardian_fd_ >= 0) {
    (void)!write(guardian_fd_, "done\n", 5);
    close(guardian_fd_);
    guardian_fd_ = -1;
  }
  end_process(guardian_, std::chrono::seconds(3));
  guardian_ = -1;
}

std::string NetLab::control(const std::string& command) {
  if (control_in_ < 0) return "error: no delay line";
  const std::string line = command + "\n";
  if (write(control_in_, line.data(), line.size()) != ssize_t(line.size())) return "error: delay line gone";
  std::string reply;
  if (!read_line(control_out_, &pending_, &reply, std::chrono::seconds(10))) return "error: no reply";
  return reply;
}

namespace {
std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace

bool NetLab::set_delay_ms(double v) { return control("delay " + number(v)) == "ok"; }
bool NetLab::set_jitter_ms(double v) { return control("jitter " + number(v)) == "ok"; }
bool NetLab::set_loss(double p) { return control("loss " + number(p)) == "ok"; }
bool NetLab::set_rate_bps(uint64_t bps) { return control("rate " + std::to_string(bps)) == "ok"; }
bool NetLab::link_down(uint64_t ms) { return control("down " + std::to_string(ms)) == "ok"; }
bool NetLab::link_up() { return control("up") == "ok"; }

bool NetLab::counters(LabCounters* out) {
  const std::string reply = control("stats");
  if (reply.rfind("stats ", 0) != 0) return false;
  std::istringstream in(reply.substr(6));
  *out = {};
  for (std::string kv; in >> kv;) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = kv.substr(0, eq);
    const uint64_t v = std::strtoull(kv.c_str() + eq + 1, nullptr, 10);
    if (key == "cpu_us") {
      out->cpu_us = v;
      continue;
    }
    const size_t dot = key.find('.');
    if (dot == std::string::npos) continue;
    DirectionCounters& d = key.compare(0, dot, "to") == 0 ? out->to_ns : out->from_ns;
    const std::string f = key.substr(dot + 1);
    if (f == "passed") d.passed = v;
    else if (f == "bytes") d.bytes = v;
    else if (f == "lost") d.lost = v;
    else if (f == "down") d.down = v;
    else if (f == "queue") d.queue = v;
    else if (f == "reordered") d.reordered = v;
    else if (f == "late_max_us") d.late_max_us = v;
    else if (f == "late_mean_us") d.late_mean_us = v;
  }
  return true;
}

pid_t NetLab::spawn(const std::vector<std::string>& argv, std::string* err, int stdout_fd) {
  std::vector<std::string> args{"ip", "netns", "exec", netns_};
  args.insert(args.end(), argv.begin(), argv.end());
  const pid_t pid = spawn_with(args, -1, stdout_fd, false, false, err);
  if (pid > 0) spawned_.push_back(pid);
  return pid;
}

NetLab::Inside::Inside(const NetLab& lab) {
  home_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int fd = open(netns_path(lab.netns()).c_str(), O_RDONLY | O_CLOEXEC);
  ok_ = home_ >= 0 && fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0) close(fd);
}

NetLab::Inside::~Inside() {
  if (home_ < 0) return;
  if (ok_) setns(home_, CLONE_NEWNET);
  close(home_);
}

}  // namespace barrage::netlab
