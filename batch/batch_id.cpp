// BatchIdSource: 96 random bits per id from a splitmix64 stream.
#include "batch/batch_id.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <chrono>

namespace barrage {

namespace {

uint64_t kernel_seed() {
  uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != ssize_t(sizeof seed))
    seed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^ uint64_t(::getpid()) << 32;
  return seed;
}

}  // namespace

BatchIdSource::BatchIdSource() : state_(kernel_seed()) {}

// splitmix64 (Steele, Lea, Flood 2014): one add and two multiply-xorshifts,
// enough for ids that only need to be unlikely to collide.
uint64_t BatchIdSource::next_random() noexcept {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string BatchIdSource::next() {
  static const char kHex[] = "0123456789abcdef";
  std::string id = "batch_req_";
  uint64_t a = next_random(), b = next_random();
  for (int i = 0; i < 16; ++i) id += kHex[(a >> (60 - 4 * i)) & 15];
  for (int i = 0; i < 8; ++i) id += kHex[(b >> (60 - 4 * i)) & 15];
  return id;
}

}  // namespace barrage
