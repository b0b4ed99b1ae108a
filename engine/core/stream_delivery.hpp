// Streamed answers (server-sent events): body bytes through the SSE parser,
// each data event out as one partial outcome, in order; the first-token and
// idle-between-events deadlines; the token timing the outcomes report.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/results.hpp"
#include "http/response.hpp"
#include "http/stream_event.hpp"
#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"

namespace barrage {

struct Request;

class StreamDelivery {
 public:
  StreamDelivery(TimerWheel& wheel, const Clock& clock, Results& results) noexcept
      : wheel_(wheel), clock_(clock), results_(results) {}

  // An attempt of r starts: fresh parser state, both deadlines armed.
  void begin_attempt(Request& r) noexcept;
  void cancel_timers(Request& r) noexcept;
  // Body bytes of r's answer. "" or why the stream cannot go on (an event
  // over its size limit): the attempt then fails.
  std::string feed(Request& r, const http::Response& resp, std::string_view piece) noexcept;

 private:
  bool deliver(Request& r, int http_status, std::string_view data, uint64_t now_ns) noexcept;

  TimerWheel& wheel_;
  const Clock& clock_;
  Results& results_;
  http::StreamEventReader events_;
};

}  // namespace barrage
