// The delay line's control language, without I/O: one command line in, one
// reply line out, applied to the two link directions. The same commands set
// the start values (barrage_delay_line --delay 40 is the command "delay 40").
//
//   delay MS [to|from]     one-way delay (fractional ms allowed)
//   jitter MS [to|from]    each packet's delay drawn from delay +- jitter
//   loss P [to|from]       independent random loss, 0..1
//   rate BPS [to|from]     bits per second on the wire, 0 = unlimited
//   queue BYTES [to|from]  rate cap's queue before tail drop
//   down MS                both directions drop everything for MS from now
//   up                     end a down period now
//   stats                  counters, one line of key=value (see below)
//   quit                   exit
// "to" is the caller's namespace towards the lab's, "from" the way back;
// without a direction a setting applies to both. Replies: "ok", "error: ..."
// or for stats "stats to.passed=N to.bytes=N to.lost=N to.down=N to.queue=N
// to.reordered=N to.late_max_us=N to.late_mean_us=N from.passed=N ...
// cpu_us=N" (late: how long after its due time a packet really left).
#pragma once

#include <cstdint>
#include <string>

#include "link_model.hpp"

namespace barrage::netlab {

struct ControlReply {
  std::string text;  // without the newline
  bool quit = false;
};

// now_ns is the delay line's clock (for down); cpu_us the process's CPU time
// so far, reported by stats.
ControlReply apply_command(const std::string& line, LinkModel& to_ns, LinkModel& from_ns, uint64_t now_ns,
                           uint64_t cpu_us);

}  // namespace barrage::netlab
