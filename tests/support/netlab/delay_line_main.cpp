// barrage_delay_line: joins a TUN device in the caller's network namespace
// to one inside a named namespace and impairs every packet that crosses
// (link_model.hpp), one thread, epoll plus one timerfd. Settings change at run
// time through stdin (control.hpp), one reply line each on stdout; it prints
// "ready" once both devices are up and exits on "quit" or when stdin closes,
// so the devices vanish when the process that started it dies.
//
//   barrage_delay_line --netns NAME --local-if IF --ns-if IF
//                      --local A.B.C.D --peer A.B.C.D [--mtu 1500] [--seed N]
//                      [--delay MS] [--jitter MS] [--loss P] [--rate BPS] [--queue BYTES]
//                      [--realtime 0|1]
// With --realtime 1 (the default) it runs SCHED_FIFO priority 1 when allowed:
// on a busy 2-core machine a normal-priority delay line let packets leave up
// to 176 ms late (mean 4 ms) while 1,000 connections ramped up; at FIFO 1 the
// mean lag was 38-57 µs and the maximum 8 ms (a burst of due packets written
// in series). It only runs when a packet or timer is due, so it cannot spin.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "control.hpp"
#include "link_model.hpp"
#include "tun_device.hpp"

namespace barrage::netlab {
namespace {

constexpr size_t kSlotBytes = 2048;         // > the largest MTU we allow
constexpr size_t kMaxSlots = 1 << 16;       // 128 MiB of packets in flight at most
constexpr int kMaxMtu = 2000;
constexpr int kReadBurst = 256;             // packets per device per wake-up

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ULL + uint64_t(ts.tv_nsec);
}

uint64_t cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return uint64_t(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000ULL +
         uint64_t(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "barrage_delay_line: %s\n", msg.c_str());
  std::exit(1);
}

// Packet buffers, reused through a free list; a packet in flight is a slot
// index in its direction's heap.
class Slots {
 public:
  int take() {
    if (!free_.empty()) {
      const int s = free_.back();
      free_.pop_back();
      return s;
    }
    if (chunks_.size() * kChunk >= kMaxSlots) return -1;
    chunks_.push_back(std::make_unique<char[]>(kChunk * kSlotBytes));
    for (size_t i = 1; i < kChunk; ++i) free_.push_back(int((chunks_.size() - 1) * kChunk + i));
    return int((chunks_.size() - 1) * kChunk);
  }
  void give(int s) { free_.push_back(s); }
  char* at(int s) { return chunks_[size_t(s) / kChunk].get() + (size_t(s) % kChunk) * kSlotBytes; }

 private:
  static constexpr size_t kChunk = 256;
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::vector<int> free_;
};

struct InFlight {
  uint64_t due_ns;
  uint64_t seq;  // arrival order, so equal due times keep it
  int slot;
  uint32_t len;
  bool operator>(const InFlight& o) const { return due_ns != o.due_ns ? due_ns > o.due_ns : seq > o.seq; }
};

// One direction: packets read from `in`, impaired by `link`, written to `out`.
struct Direction {
  int in = -1, out = -1;
  LinkModel link;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> heap;
  explicit Direction(uint64_t seed) : link(seed) {}
};

void read_packets(Direction& d, Slots& slots, uint64_t& seq) {
  for (int i = 0; i < kReadBurst; ++i) {
    const int slot = slots.take();
    char scratch[kSlotBytes];
    char* buf = slot >= 0 ? slots.at(slot) : scratch;
    const ssize_t n = read(d.in, buf, kSlotBytes);
    if (n <= 0) {
      if (slot >= 0) slots.give(slot);
      if (n < 0 && errno != EAGAIN && errno != EINTR) die(std::string("read: ") + std::strerror(errno));
      return;
    }
    if (slot < 0) {
      d.link.count_overflow();
      continue;
    }
    const auto due = d.link.admit(now_ns(), uint32_t(n));
    if (!due) {
      slots.give(slot);
      continue;
    }
    d.heap.push({*due, seq++, slot, uint32_t(n)});
  }
}

void release_due(Direction& d, Slots& slots, uint64_t now) {
  while (!d.heap.empty() && d.heap.top().due_ns <= now) {
    const InFlight p = d.heap.top();
    d.heap.pop();
    if (d.link.depart(now, p.due_ns, p.len) && write(d.out, slots.at(p.slot), p.len) != ssize_t(p.len))
      d.link.count_overflow();
    slots.give(p.slot);
  }
}

struct Args {
  std::string netns, local_if, ns_if, local, peer;
  int mtu = 1500;
  uint64_t seed = 1;
  bool realtime = true;
  std::vector<std::string> commands;  // start settings as control commands
};

Args parse(int argc, char** argv) {
  static const std::map<std::string, std::string> kSettings = {
      {"--delay", "delay"}, {"--jitter", "jitter"}, {"--loss", "loss"}, {"--rate", "rate"}, {"--queue", "queue"}};
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (i + 1 >= argc) die("missing value for " + f);
    const std::string v = argv[++i];
    if (f == "--netns") a.netns = v;
    else if (f == "--local-if") a.local_if = v;
    else if (f == "--ns-if") a.ns_if = v;
    else if (f == "--local") a.local = v;
    else if (f == "--peer") a.peer = v;
    else if (f == "--mtu") a.mtu = std::atoi(v.c_str());
    else if (f == "--seed") a.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (f == "--realtime") a.realtime = v != "0";
    else if (auto it = kSettings.find(f); it != kSettings.end()) a.commands.push_back(it->second + " " + v);
    else die("unknown option " + f);
  }
  if (a.netns.empty() || a.local_if.empty() || a.ns_if.empty() || a.local.empty() || a.peer.empty())
    die("--netns, --local-if, --ns-if, --local and --peer are required");
  if (a.mtu < 576 || a.mtu > kMaxMtu) die("--mtu must be 576.." + std::to_string(kMaxMtu));
  return a;
}

in_addr ipv4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) die("not an IPv4 address: " + s);
  return a;
}

void write_line(const std::string& s) {
  const std::string line = s + "\n";
  if (write(STDOUT_FILENO, line.data(), line.size()) != ssize_t(line.size())) std::exit(0);  // nobody listens
}

void add_watch(int ep, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die(std::string("epoll_ctl: ") + std::strerror(errno));
}

int run(const Args& a) {
  // Timers wake us within a few µs of the due time, not the default 50 µs.
  prctl(PR_SET_TIMERSLACK, 1UL);
  if (a.realtime) {
    const sched_param sp{.sched_priority = 1};
    sched_setscheduler(0, SCHED_FIFO, &sp);  // best effort: without the right, normal priority
  }
  std::string err;
  const in_addr local = ipv4(a.local), peer = ipv4(a.peer);
  const int outer = open_tun(a.local_if, &err);
  if (outer < 0 || !configure_point_to_point(a.local_if, local, peer, a.mtu, &err)) die(err);
  // The namespace applies to this thread from here on; the outer device's
  // descriptor keeps working, and sockets and devices made now are inside.
  const std::string ns_path = "/var/run/netns/" + a.netns;
  const int ns_fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0 || setns(ns_fd, CLONE_NEWNET) != 0) die(ns_path + ": " + std::strerror(errno));
  close(ns_fd);
  const int inner = open_tun(a.ns_if, &err);
  if (inner < 0 || !configure_point_to_point(a.ns_if, peer, local, a.mtu, &err) || !bring_up_loopback(&err))
    die(err);

  Direction to(a.seed), from(a.seed ^ 0x5bd1e995u);
  to.in = outer, to.out = inner, from.in = inner, from.out = outer;
  for (const std::string& c : a.commands) {
    const ControlReply r = apply_command(c, to.link, from.link, now_ns(), 0);
    if (r.text != "ok") die(c + ": " + r.text);
  }
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  const int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tfd < 0) die("epoll or timerfd failed");
  add_watch(ep, outer);
  add_watch(ep, inner);
  add_watch(ep, tfd);
  add_watch(ep, STDIN_FILENO);
  write_line("ready");

  Slots slots;
  uint64_t seq = 0;
  uint64_t armed = 0;  // absolute due time the timerfd holds, 0 = none
  std::string control;
  for (;;) {
    epoll_event evs[8];
    const int n = epoll_wait(ep, evs, 8, -1);
    if (n < 0 && errno != EINTR) die(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == outer) read_packets(to, slots, seq);
      else if (fd == inner) read_packets(from, slots, seq);
      else if (fd == tfd) {
        uint64_t ticks;
        (void)!read(tfd, &ticks, sizeof ticks);
        armed = 0;
      } else if (fd == STDIN_FILENO) {
        char buf[4096];
        const ssize_t k = read(STDIN_FILENO, buf, sizeof buf);
        if (k <= 0) return 0;  // whoever started us is gone
        control.append(buf, size_t(k));
        for (size_t nl; (nl = control.find('\n')) != std::string::npos;) {
          const ControlReply r = apply_command(control.substr(0, nl), to.link, from.link, now_ns(), cpu_us());
          control.erase(0, nl + 1);
          write_line(r.text);
          if (r.quit) return 0;
        }
      }
    }
    const uint64_t now = now_ns();
    release_due(to, slots, now);
    release_due(from, slots, now);
    uint64_t next = 0;
    for (Direction* d : {&to, &from})
      if (!d->heap.empty() && (next == 0 || d->heap.top().due_ns < next)) next = d->heap.top().due_ns;
    if (next != 0 && next != armed) {
      itimerspec its{};
      its.it_value.tv_sec = time_t(next / 1'000'000'000ULL);
      its.it_value.tv_nsec = long(next % 1'000'000'000ULL);
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
      armed = next;
    }
  }
}

}  // namespace
}  // namespace barrage::netlab

int main(int argc, char** argv) { return barrage::netlab::run(barrage::netlab::parse(argc, argv)); }
