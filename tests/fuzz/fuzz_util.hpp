// Shared by the fuzz targets: reading split points and flags off the front of
// the input, and failing loudly (abort, which libFuzzer reports as a crash
// and saves the input) when a property does not hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace fuzz {

// Prints which property broke, then aborts so libFuzzer records the input.
[[noreturn]] inline void violated(const char* what) {
  std::fprintf(stderr, "PROPERTY VIOLATED: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond)                                 \
  do {                                                   \
    if (!(cond)) ::fuzz::violated(#cond " (" __FILE__ ")"); \
  } while (0)

// Consumes bytes from the front of the input for parameters; the rest is the
// payload under test. Missing bytes read as 0, so short inputs still run.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(reinterpret_cast<const char*>(data)), n_(size) {}
  uint8_t byte() {
    if (n_ == 0) return 0;
    --n_;
    return uint8_t(*p_++);
  }
  uint16_t u16() { return uint16_t(byte() | (byte() << 8)); }
  // The next n bytes (fewer if the input ends).
  std::string_view take(size_t n) {
    if (n > n_) n = n_;
    const std::string_view r(p_, n);
    p_ += n;
    n_ -= n;
    return r;
  }
  // Everything left.
  std::string_view rest() const { return {p_, n_}; }
  // Up to the first occurrence of `sep` (consumed), or everything left.
  std::string_view until(char sep) {
    std::string_view r = rest();
    const size_t at = r.find(sep);
    const size_t take = at == std::string_view::npos ? r.size() : at;
    const size_t skip = at == std::string_view::npos ? take : take + 1;
    p_ += skip;
    n_ -= skip;
    return r.substr(0, take);
  }

 private:
  const char* p_;
  size_t n_;
};

// Two cut points inside the payload (whatever follows their four bytes),
// ordered: the payload is fed in three pieces.
struct Splits {
  size_t a, b;
};
inline Splits splits(Input& in) {
  const size_t ra = in.u16(), rb = in.u16();
  const size_t len = in.rest().size();
  size_t a = ra % (len + 1), b = rb % (len + 1);
  if (a > b) {
    const size_t t = a;
    a = b;
    b = t;
  }
  return {a, b};
}

}  // namespace fuzz
