// io_uring backend: one ring, multishot receive into a provided buffer ring,
// one submission per loop turn.
#pragma once

#include <memory>
#include <string>

#include "loop/backend.hpp"

namespace barrage {

// nullptr with *err set when the kernel or sandbox refuses any needed feature.
std::unique_ptr<Backend> make_uring_backend(std::string* err) noexcept;

}  // namespace barrage
