// Edge-triggered epoll backend: emulates the proactor completions of the
// io_uring backend, for kernels or sandboxes where io_uring is unavailable.
#pragma once

#include <memory>
#include <string>

#include "loop/backend.hpp"

namespace barrage {

std::unique_ptr<Backend> make_epoll_backend(std::string* err) noexcept;

}  // namespace barrage
