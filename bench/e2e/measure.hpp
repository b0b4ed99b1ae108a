// Clocks and resource readings for the end-to-end suite: wall time, this
// process's CPU time and resident memory, another process's CPU time, and
// percentiles of latency samples.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace barrage::e2e {

// CLOCK_MONOTONIC in ns.
int64_t now_ns() noexcept;
// User + system CPU time of this process (getrusage RUSAGE_SELF) in µs.
int64_t self_cpu_us() noexcept;
// Resident set size now, from /proc/self/statm (ru_maxrss is a high-water
// mark and cannot show what a pool of idle connections holds).
int64_t rss_bytes() noexcept;
// User + system CPU time of process `pid` in µs, from /proc/PID/stat (clock
// tick resolution, 10 ms here); -1 when it cannot be read.
int64_t proc_cpu_us(pid_t pid) noexcept;
// The q-quantile (0..1) of `v`, which is sorted in place; 0 when empty.
int64_t quantile(std::vector<int64_t>& v, double q);

}  // namespace barrage::e2e
