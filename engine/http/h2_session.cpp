// HTTP/2 client session: nghttp2 does the framing, HPACK, flow control and
// stream states; this file keeps per-stream response state, enforces the
// size limits, and makes sure every stream is reported exactly once. nghttp2
// calls back into C code paths, so nothing here may throw.
#include "http/h2_session.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <initializer_list>
#include <new>

#include "barrage.h"
#include "http/ascii.hpp"

namespace barrage::http {
namespace {

// Recycled streams keep at most this much body capacity, and at most this
// many are kept: a burst of large answers must not pin memory for good.
constexpr size_t kPooledBodyCapacity = 64 * 1024;
constexpr size_t kMaxPooledStreams = 64;
// A Content-Length is a hint for one reservation, never trusted for more.
constexpr size_t kMaxBodyReserve = 1u << 20;

// Error texts are built where no exception may escape: on allocation
// failure the message is simply lost, the status still gets through.
std::string text(std::initializer_list<std::string_view> parts) noexcept {
  std::string s;
  try {
    size_t n = 0;
    for (std::string_view p : parts) n += p.size();
    s.reserve(n);
    for (std::string_view p : parts) s.append(p);
  } catch (const std::bad_alloc&) {
    s.clear();
  }
  return s;
}

struct Num {
  explicit Num(uint64_t v) noexcept {
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    len = size_t(r.ptr - buf);
  }
  std::string_view sv() const noexcept { return {buf, len}; }
  char buf[24];
  size_t len = 0;
};

std::string_view h2_code(uint32_t code) noexcept { return nghttp2_http2_strerror(code); }
std::string_view lib_text(int code) noexcept { return nghttp2_strerror(code); }

}  // namespace

// ---- per-stream state ---------------------------------------------------

struct H2Session::Stream {
  // Which HEADERS block is being received: the header callback needs it to
  // keep only the final response's fields.
  enum class Block : uint8_t { none, interim, final_response, trailers };

  void reset() noexcept {
    user = nullptr;
    id = 0;
    keep_body = true;
    reported = false;
    headers_sent = false;
    body_done = false;
    final_seen = false;
    peer_reset = false;
    block = Block::none;
    request_body = {};
    request_sent = 0;
    header_bytes = 0;
    body_bytes = 0;
    lib_error = 0;
    response.reset(kPooledBodyCapacity);
  }

  ListHook<Stream> hook;
  void* user = nullptr;
  int32_t id = 0;
  bool keep_body = true;
  bool reported = false;      // its one event was delivered, or it was cancelled
  bool headers_sent = false;  // the request HEADERS left nghttp2 (the server may have seen it)
  bool body_done = false;     // the whole request body was handed to nghttp2
  bool final_seen = false;    // a non-1xx :status arrived
  bool peer_reset = false;    // the server sent RST_STREAM
  Block block = Block::none;
  std::string_view request_body;  // points into the caller's wire buffer
  size_t request_sent = 0;
  size_t header_bytes = 0;
  size_t body_bytes = 0;
  int lib_error = 0;  // why nghttp2 reset the stream itself, when it said so
  Response response;
};

H2Session::Stream* H2Session::acquire() noexcept {
  Stream* s = nullptr;
  if (!free_.empty()) {
    s = free_.back();
    free_.pop_back();
  } else {
    s = new (std::nothrow) Stream;
    if (!s) return nullptr;
  }
  s->reset();
  return s;
}

void H2Session::release(Stream* s) noexcept {
  if (s->hook.linked()) live_.remove(s->hook);
  if (free_.size() < kMaxPooledStreams) {
    try {
      free_.push_back(s);
      return;
    } catch (const std::bad_alloc&) {
    }
  }
  delete s;
}

H2Session::Stream* H2Session::find(int32_t stream_id) const noexcept {
  if (session_) {
    auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
    if (s) return s;
  }
  // Streams whose HEADERS are still queued are not known to nghttp2 as
  // streams yet; those lookups (cancel, frame not sent) are rare.
  Stream* found = nullptr;
  live_.for_each([&](Stream* s) {
    if (s->id == stream_id) found = s;
  });
  return found;
}

// ---- reporting: every path below marks the stream reported first ---------

void H2Session::complete(Stream* s) noexcept {
  s->reported = true;
  --open_;
  // The server answered before the whole request body went out: the rest
  // is not wanted, and the wire buffer may be freed once we report.
  if (!s->body_done) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  if (events_) events_->on_complete(s->user, s->response);
}

void H2Session::report_error(Stream* s, int status, std::string message, bool unprocessed) noexcept {
  if (s->reported) return;
  s->reported = true;
  --open_;
  if (events_) events_->on_stream_error(s->user, status, std::move(message), unprocessed);
}

// A failure found on our side (limit, malformed response): this stream only.
void H2Session::reset_stream(Stream* s, int status, std::string message) noexcept {
  if (s->reported) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
  report_error(s, status, std::move(message), false);
}

void H2Session::report_closed(Stream* s, uint32_t error_code) noexcept {
  if (error_code == NGHTTP2_REFUSED_STREAM) {
    report_error(s, BRG_E_IO, text({"stream refused by the server (REFUSED_STREAM)"}), true);
  } else if (goaway_received_ && s->id > goaway_last_id_) {
    report_error(s, BRG_E_IO, text({"server is going away (GOAWAY); request not processed"}), true);
  } else if (s->peer_reset) {
    report_error(s, BRG_E_IO, text({"stream reset by the server: ", h2_code(error_code)}), false);
  } else if (s->lib_error != 0) {
    report_error(s, BRG_E_PROTOCOL, text({"HTTP/2 stream error: ", lib_text(s->lib_error)}), false);
  } else {
    report_error(s, BRG_E_PROTOCOL,
                 text({"HTTP/2 stream closed before the response ended: ", h2_code(error_code)}), false);
  }
}

void H2Session::fail_all(int status, std::string_view message) noexcept {
  failed_ = true;
  if (error_.empty()) {
    try {
      error_.assign(message);
    } catch (const std::bad_alloc&) {
    }
  }
  // An event may cancel other streams (only marks them reported) or try to
  // submit (refused now); flush() is a no-op inside, so no stream is
  // unlinked while the list is walked.
  ++depth_;
  live_.for_each([&](Stream* s) {
    if (!s->reported) report_error(s, status, text({message}), !s->headers_sent);
  });
  --depth_;
}

void H2Session::fail_session(std::string message) noexcept {
  if (failed_) return;
  error_ = std::move(message);
  if (error_.empty()) error_ = "HTTP/2 error";  // fits the small-string buffer: cannot throw
  fail_all(BRG_E_PROTOCOL, error_);
}

// ---- nghttp2 callbacks --------------------------------------------------

struct H2Session::Callbacks {
  static H2Session& self(void* user_data) noexcept { return *static_cast<H2Session*>(user_data); }

  static Stream* open_stream(H2Session& h, int32_t stream_id) noexcept {
    auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(h.session_, stream_id));
    return (s && !s->reported) ? s : nullptr;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* s = open_stream(self(ud), frame->hd.stream_id);
    if (!s) return 0;
    s->response.set_started();
    s->block = s->final_seen ? Stream::Block::trailers : Stream::Block::none;
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                       void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Session& h = self(ud);
    Stream* s = open_stream(h, frame->hd.stream_id);
    if (!s) return 0;
    s->header_bytes += namelen + valuelen;
    if (s->header_bytes > h.options_.max_header_bytes) {
      h.reset_stream(s, BRG_E_TOO_LARGE,
                     text({"response headers exceed ", Num(h.options_.max_header_bytes).sv(), " bytes"}));
      return 0;
    }
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int code = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), code);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || code < 100 || code > 999) {
        h.reset_stream(s, BRG_E_PROTOCOL, text({"invalid :status in HTTP/2 response"}));
        return 0;
      }
      if (code < 200) {
        s->block = Stream::Block::interim;  // 1xx: skipped, the final response follows
        return 0;
      }
      s->block = Stream::Block::final_response;
      s->final_seen = true;
      s->response.set_status(code);
      if (h.events_) h.events_->on_first_byte(s->user);
      return 0;
    }
    if (s->block != Stream::Block::final_response || n.empty() || n.front() == ':') return 0;
    if (!s->response.add_header(n, v)) {
      h.reset_stream(s, BRG_E_NOMEM, text({"out of memory storing response headers"}));
      return 0;
    }
    if (n == "content-length" && s->keep_body) {
      size_t len = 0;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), len);
      if (r.ec == std::errc() && len <= h.options_.max_body_bytes) {
        try {
          s->response.body_.reserve(std::min(len, kMaxBodyReserve));
        } catch (const std::bad_alloc&) {
          // Growth will be attempted (and reported) as data arrives.
        }
      }
    }
    return 0;
  }

  static int on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                                size_t len, void* ud) noexcept {
    H2Session& h = self(ud);
    Stream* s = open_stream(h, stream_id);
    if (!s) return 0;  // reset or cancelled: nghttp2 still credits the window
    s->body_bytes += len;
    if (s->body_bytes > h.options_.max_body_bytes) {
      h.reset_stream(s, BRG_E_TOO_LARGE,
                     text({"response body exceeds ", Num(h.options_.max_body_bytes).sv(), " bytes"}));
      return 0;
    }
    if (s->keep_body) {
      try {
        s->response.body_.append(reinterpret_cast<const char*>(data), len);
      } catch (const std::bad_alloc&) {
        h.reset_stream(s, BRG_E_NOMEM, text({"out of memory storing the response body"}));
        return 0;
      }
    }
    if (h.events_) h.events_->on_data(s->user, s->response, reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static void end_stream(H2Session& h, Stream* s) noexcept {
    if (!s->final_seen) {
      h.reset_stream(s, BRG_E_PROTOCOL, text({"HTTP/2 stream ended without a final response"}));
      return;
    }
    s->response.set_headers_complete();
    h.complete(s);
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    H2Session& h = self(ud);
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA: {
        Stream* s = open_stream(h, frame->hd.stream_id);
        if (!s) break;
        if (frame->hd.type == NGHTTP2_HEADERS && s->block == Stream::Block::final_response) {
          s->response.set_headers_complete();
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) end_stream(h, s);
        break;
      }
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) h.settings_received_ = true;
        break;
      case NGHTTP2_RST_STREAM: {
        Stream* s = open_stream(h, frame->hd.stream_id);
        if (s) s->peer_reset = true;  // reported by on_stream_close, which follows
        break;
      }
      case NGHTTP2_GOAWAY: {
        h.goaway_received_ = true;
        h.goaway_last_id_ = frame->goaway.last_stream_id;
        // Report the streams the server will not process now rather than
        // when nghttp2 gets to them: queued ones only fail at the next flush.
        const int32_t last = frame->goaway.last_stream_id;
        h.live_.for_each([&](Stream* s) {
          if (!s->reported && s->id > last) {
            h.report_error(s, BRG_E_IO, text({"server is going away (GOAWAY); request not processed"}),
                           true);
          }
        });
        break;
      }
      default:
        break;
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* ud) noexcept {
    H2Session& h = self(ud);
    Stream* s = h.find(stream_id);
    if (!s) return 0;
    if (!s->reported) h.report_closed(s, error_code);
    // The Stream is recycled: nghttp2 must not hand it out for this id again.
    nghttp2_session_set_stream_user_data(h.session_, stream_id, nullptr);
    h.release(s);
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) noexcept {
    H2Session& h = self(ud);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      Stream* s = h.find(frame->hd.stream_id);
      if (s) s->headers_sent = true;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      h.goaway_sent_ = true;
      // We never close a connection on our own, so an error GOAWAY means
      // nghttp2 found a connection-level protocol error in what it received;
      // its debug data says what.
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        const std::string_view debug(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                                     frame->goaway.opaque_data_len);
        std::string_view detail = h.last_lib_error_;
        h.fail_session(text({"HTTP/2 connection error ", h2_code(frame->goaway.error_code),
                             debug.empty() ? "" : ": ", debug, detail.empty() ? "" : " (", detail,
                             detail.empty() ? "" : ")"}));
      }
    }
    return 0;
  }

  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int lib_error,
                               void* ud) noexcept {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    H2Session& h = self(ud);
    Stream* s = h.find(frame->hd.stream_id);
    if (!s) return 0;
    h.report_error(s, BRG_E_IO, text({"HTTP/2 request not sent: ", lib_text(lib_error)}), true);
    // Unless nghttp2 opened the stream (then on_stream_close follows), this
    // is the last time it mentions the stream.
    if (!nghttp2_session_find_stream(session, frame->hd.stream_id)) h.release(s);
    return 0;
  }

  static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                                   void* ud) noexcept {
    H2Session& h = self(ud);
    if (frame->hd.stream_id != 0) {
      Stream* s = open_stream(h, frame->hd.stream_id);
      if (s) s->lib_error = lib_error;  // nghttp2 resets the stream; this says why
    }
    try {
      h.last_lib_error_.assign(lib_text(lib_error));
    } catch (const std::bad_alloc&) {
    }
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) noexcept {
    try {
      self(ud).last_lib_error_.assign(msg, std::min<size_t>(len, 256));
    } catch (const std::bad_alloc&) {
    }
    return 0;
  }

  // Request body straight from the caller's wire buffer. A stream that has
  // already been reported may have lost that buffer: it sends nothing more
  // (its RST_STREAM or close is on the way).
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void*) noexcept {
    auto* s = static_cast<Stream*>(source->ptr);
    if (s->reported) return NGHTTP2_ERR_DEFERRED;
    const size_t n = std::min(length, s->request_body.size() - s->request_sent);
    std::memcpy(buf, s->request_body.data() + s->request_sent, n);
    s->request_sent += n;
    if (s->request_sent == s->request_body.size()) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      s->body_done = true;
    }
    return static_cast<ssize_t>(n);
  }
};

// ---- session ------------------------------------------------------------

H2Session::~H2Session() {
  events_ = nullptr;  // nghttp2_session_del reports nothing, but make sure
  if (session_) nghttp2_session_del(session_);
  while (Stream* s = live_.pop_front()) delete s;
  for (Stream* s : free_) delete s;
}

bool H2Session::init(H2Events* events, const H2Options& options, std::string* out,
                     std::string* err) noexcept {
  auto refuse = [&](std::string_view why) {
    if (err) {
      try {
        err->assign(why);
      } catch (const std::bad_alloc&) {
      }
    }
    return false;
  };
  if (session_) return refuse("HTTP/2 session already initialised");
  if (!events || !out) return refuse("HTTP/2 session needs events and an output buffer");
  if (options.stream_window > uint32_t(NGHTTP2_MAX_WINDOW_SIZE) ||
      options.connection_window > uint32_t(NGHTTP2_MAX_WINDOW_SIZE)) {
    return refuse("HTTP/2 window size above 2^31-1");
  }

  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return refuse("out of memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, Callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, Callbacks::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, Callbacks::on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, Callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, Callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, Callbacks::on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, Callbacks::on_frame_not_send);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, Callbacks::on_invalid_frame_recv);
  nghttp2_session_callbacks_set_error_callback2(cbs, Callbacks::on_error);
  const int rv = nghttp2_session_client_new(&session_, cbs, this);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    return refuse(lib_text(rv));
  }

  events_ = events;
  out_ = out;
  options_ = options;
  // Push is useless to an API client; a large stream window lets a long
  // answer arrive without waiting a round trip for each WINDOW_UPDATE.
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options.stream_window},
  };
  int r = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (r == 0 && options.connection_window > uint32_t(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)) {
    r = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                              int32_t(options.connection_window));
  }
  if (r != 0) {
    nghttp2_session_del(session_);
    session_ = nullptr;
    return refuse(lib_text(r));
  }
  if (!flush()) return refuse(error_);
  return true;
}

int32_t H2Session::submit(std::string_view http1_wire, bool keep_body, void* stream_user,
                          std::string* err) noexcept {
  if (session_ && !failed_ && !goaway_received_ && !goaway_sent_ && !ids_exhausted_) {
    switch (builder_.build(http1_wire, options_.tls ? "https" : "http")) {
      case H2RequestBuilder::Result::ok:
        break;
      case H2RequestBuilder::Result::invalid:
        if (err) err->assign(builder_.reason());
        return BRG_E_INVALID;
      case H2RequestBuilder::Result::no_memory:
        if (err) err->assign(builder_.reason());
        return BRG_E_NOMEM;
    }
  }
  return submit_fields(builder_.fields(), builder_.body(), keep_body, stream_user, err);
}

int32_t H2Session::submit(const RequestHead& head, bool keep_body, void* stream_user, std::string* err) noexcept {
  return submit_fields(head.h2_fields(), head.body(), keep_body, stream_user, err);
}

int32_t H2Session::submit_fields(const std::vector<HeaderView>& fields, std::string_view request_body,
                                 bool keep_body, void* stream_user, std::string* err) noexcept {
  auto refuse = [&](int status, std::string_view why) -> int32_t {
    if (err) {
      try {
        err->assign(why);
      } catch (const std::bad_alloc&) {
      }
    }
    return status;
  };
  if (!session_) return refuse(BRG_E_CLOSED, "HTTP/2 session not initialised");
  if (failed_ || goaway_received_ || goaway_sent_ || ids_exhausted_) {
    return refuse(BRG_E_CLOSED, "HTTP/2 connection is going away");
  }
  try {
    nv_.resize(fields.size());
  } catch (const std::bad_alloc&) {
    return refuse(BRG_E_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    // nghttp2 copies names and values (no NO_COPY flags): the lower-cased
    // names live in the builder, which the next submit reuses.
    nv_[i].name = reinterpret_cast<uint8_t*>(const_cast<char*>(fields[i].name.data()));
    nv_[i].namelen = fields[i].name.size();
    nv_[i].value = reinterpret_cast<uint8_t*>(const_cast<char*>(fields[i].value.data()));
    nv_[i].valuelen = fields[i].value.size();
    nv_[i].flags = NGHTTP2_NV_FLAG_NONE;
  }

  Stream* s = acquire();
  if (!s) return refuse(BRG_E_NOMEM, "out of memory");
  s->user = stream_user;
  s->keep_body = keep_body;
  s->request_body = request_body;
  s->body_done = s->request_body.empty();
  nghttp2_data_provider body;
  body.source.ptr = s;
  body.read_callback = Callbacks::read_body;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nv_.data(), nv_.size(),
                                            s->body_done ? nullptr : &body, s);
  if (id < 0) {
    release(s);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
      ids_exhausted_ = true;
      return refuse(BRG_E_CLOSED, "HTTP/2 stream ids exhausted on this connection");
    }
    if (id == NGHTTP2_ERR_NOMEM) return refuse(BRG_E_NOMEM, "out of memory");
    return refuse(BRG_E_INVALID, lib_text(id));
  }
  s->id = id;
  live_.push_back(s->hook, s);
  ++open_;
  // The next id would not fit: this connection takes no more requests.
  if (id > INT32_MAX - 2) ids_exhausted_ = true;
  return id;
}

bool H2Session::feed(const char* p, size_t n) noexcept {
  if (!session_ || dead_ || failed_) {
    if (error_.empty()) error_ = text({"HTTP/2 session is not usable"});
    return false;
  }
  if (depth_ > 0) {
    fail_session(text({"H2Session::feed called from inside an HTTP/2 event"}));
    return false;
  }
  last_lib_error_.clear();  // only a message from this input may explain its failure
  ++depth_;
  const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(p), n);
  --depth_;
  if (rv < 0) {
    dead_ = true;
    fail_session(text({"HTTP/2 receive failed: ", lib_text(int(rv))}));
    return false;
  }
  // nghttp2 reports a connection error only by queueing a GOAWAY and
  // refusing new requests. Without a GOAWAY from the peer, refusing means
  // exactly that; sending it now runs on_frame_send, which fails the session
  // with nghttp2's reason (after a peer GOAWAY the next flush() does that).
  if (!failed_ && !goaway_received_ && !ids_exhausted_ &&
      !nghttp2_session_check_request_allowed(session_)) {
    flush();
    if (!failed_) fail_session(text({"HTTP/2 connection error", last_lib_error_.empty() ? "" : ": ",
                                     last_lib_error_}));
  }
  return !failed_;
}

bool H2Session::flush(size_t max_out) noexcept {
  if (!session_ || dead_) return false;
  if (depth_ > 0) return !failed_;  // the caller's flush after feed() sends it
  ++depth_;
  // nghttp2 hands out one frame per call and keeps the rest, so stopping
  // at the budget loses nothing.
  while (out_->size() < max_out) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n == 0) break;
    if (n < 0) {
      dead_ = true;
      fail_session(text({"HTTP/2 send failed: ", lib_text(int(n))}));
      break;
    }
    try {
      out_->append(reinterpret_cast<const char*>(data), size_t(n));
    } catch (const std::bad_alloc&) {
      // A frame lost halfway would corrupt the connection for everyone.
      dead_ = true;
      fail_session(text({"out of memory queueing HTTP/2 frames"}));
      break;
    }
  }
  --depth_;
  return !failed_;
}

void H2Session::cancel(int32_t stream_id) noexcept {
  if (!session_ || stream_id <= 0) return;
  Stream* s = find(stream_id);
  if (!s || s->reported) return;
  s->reported = true;
  --open_;
  // Also cancels HEADERS still queued; nghttp2 then drops the request unsent.
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

void H2Session::goodbye() noexcept {
  if (!session_ || dead_ || goaway_sent_) return;
  // A client's last-stream-id names server-initiated streams: none (push is off).
  if (nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0) == 0) flush();
  goaway_sent_ = true;
}

uint32_t H2Session::max_concurrent_streams() const noexcept {
  if (!session_) return 0;
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool H2Session::can_submit() const noexcept {
  return session_ && !going_away() && !ids_exhausted_ && open_ < max_concurrent_streams();
}

bool H2Session::wants_io() const noexcept {
  if (!session_ || dead_) return false;
  return nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_);
}

bool H2Session::wants_write() const noexcept {
  return session_ && !dead_ && nghttp2_session_want_write(session_);
}

}  // namespace barrage::http
