// A network lab for tests and benchmarks: a fresh network namespace joined
// to the caller's by barrage_delay_line (a point-to-point IPv4 link over two
// TUN devices that delays, drops, reorders and rate-limits packets), servers
// started inside it, and everything removed again when the NetLab ends or
// when the process that made it dies (a guardian process in its own session
// waits for that). The contract, in full:
//
//   - create() makes namespace "brgnl-<pid>-<n>", link "brgnl<hex>a" here and
//     "brgnl<hex>b" there, addresses local_address() (here) and
//     peer_address() (there), both in 198.18.0.0/15 (RFC 2544's benchmark
//     range), unique per live lab on the machine; lo is up inside.
//   - The impairment starts as NetLabOptions says and changes at run time
//     (set_*, link_down, or control() with a raw command of control.hpp);
//     every call returns once the delay line has applied it.
//   - spawn() runs a command inside with `ip netns exec`; it gets SIGTERM,
//     then SIGKILL after 3 s, when the lab ends.
//   - Inside lets a thread of this process work in the namespace (sockets it
//     makes there stay there, threads it starts inherit it): in-process
//     servers such as the mock endpoint listen on peer_address() that way.
//   - ~NetLab stops the servers, the delay line (its devices go with it) and
//     deletes the namespace. If this process dies first, the delay line sees
//     its stdin close and exits, and the guardian kills whatever runs in the
//     namespace and deletes it.
// Needs root, /dev/net/tun and `ip` (iproute2); unavailable() says what is
// missing so tests can skip with that reason.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace barrage::netlab {

// One direction's impairment (both directions start the same).
struct Impairment {
  double delay_ms = 0;   // one way
  double jitter_ms = 0;  // delay drawn from delay +- jitter per packet; reorders
  double loss = 0;       // 0..1
  uint64_t rate_bps = 0; // 0 = unlimited
  uint64_t queue_bytes = 0;  // 0 = the delay line's default (256 KiB)
};

struct NetLabOptions {
  Impairment link;
  uint64_t seed = 1;  // loss and jitter draws: the same seed, the same drops
  int mtu = 1500;
};

struct DirectionCounters {
  uint64_t passed = 0, bytes = 0, lost = 0, down = 0, queue = 0, reordered = 0;
  uint64_t late_max_us = 0, late_mean_us = 0;  // the delay line's lag behind the due times
};

struct LabCounters {
  DirectionCounters to_ns, from_ns;  // caller -> namespace, and back
  uint64_t cpu_us = 0;               // the delay line's CPU time so far
};

class NetLab {
 public:
  // "" when this machine can host a lab, else why not (for GTEST_SKIP).
  static std::string unavailable();
  // nullptr with *err when anything fails (nothing is left behind then).
  static std::unique_ptr<NetLab> create(const NetLabOptions& options, std::string* err);
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  const std::string& netns() const { return netns_; }
  const std::string& local_address() const { return local_; }
  const std::string& peer_address() const { return peer_; }
  const std::string& local_interface() const { return local_if_; }
  pid_t delay_line_pid() const { return delay_line_; }

  // Sends one control.hpp command and returns the delay line's reply
  // ("ok", "error: ...", "stats ..."); "error: ..." if it is gone.
  std::string control(const std::string& command);
  // Each true once applied. Settings apply to both directions.
  bool set_delay_ms(double one_way);
  bool set_jitter_ms(double jitter);
  bool set_loss(double p);
  bool set_rate_bps(uint64_t bps);
  bool link_down(uint64_t ms);  // drop everything for ms from now
  bool link_up();               // end a down period early
  bool counters(LabCounters* out);

  // Runs argv inside the namespace; stdout_fd (if >= 0) becomes its stdout.
  // The pid, or -1 with *err.
  pid_t spawn(const std::vector<std::string>& argv, std::string* err, int stdout_fd = -1);

  // The calling thread is in the lab's namespace while an Inside lives.
  class Inside {
   public:
    explicit Inside(const NetLab& lab);
    ~Inside();
    bool ok() const { return ok_; }
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;

   private:
    int home_ = -1;
    bool ok_ = false;
  };

 private:
  NetLab() = default;
  bool start(const NetLabOptions& o, std::string* err);
  void stop() noexcept;

  std::string netns_, local_, peer_, local_if_, ns_if_;
  pid_t delay_line_ = -1;
  int control_in_ = -1, control_out_ = -1;  // its stdin (we write) and stdout (we read)
  std::string pending_;                     // bytes read past the last reply
  pid_t guardian_ = -1;
  int guardian_fd_ = -1;
  bool netns_made_ = false;
  std::vector<pid_t> spawned_;
};

// Counts processes whose network namespace is the named one (the guardian's
// and the fixture's cleanup, and the tests' "nothing left" check).
std::vector<pid_t> pids_in_netns(const std::string& name);

}  // namespace barrage::netlab
