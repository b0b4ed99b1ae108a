// Handing the allocator's free heap back to the system after a burst of TLS
// handshakes. Their transient state is freed when they end, but glibc keeps
// freed memory below the top of the heap, so the idle connections left
// behind would carry it in RSS: 41 KiB each after 1,000 resumed handshakes
// at once, 21 KiB after a trim. malloc_trim walks the free lists of every
// arena (about 2.5 ms after that burst, 5-10 ms in a process whose other
// threads have heaps of their own), once per burst, in a turn with no
// request left (Engine::run_turn).
// Allocators other than glibc's: nothing to do here.
#pragma once

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace barrage {

inline void give_back_free_heap() noexcept {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace barrage
