// SIGINT/SIGTERM taken synchronously instead of by a handler: the commands
// that run servers or long loops block them first, so every thread started
// afterwards inherits the mask and the main thread alone decides when to
// stop and clean up (MockServer::stop, temp files).
#pragma once

namespace barrage::cli {

// Blocks SIGINT and SIGTERM in the calling thread and undoes an inherited
// SIG_IGN, so they are always noticed. Call before starting any thread. The mask is never restored: each command runs once per process,
// and unblocking with a signal pending would kill it before cleanup.
void block_stop_signals();

// Waits for SIGINT or SIGTERM and returns its number.
int wait_stop_signal();

// Takes a pending SIGINT or SIGTERM without waiting; 0 when none is pending.
int take_stop_signal();

}  // namespace barrage::cli
