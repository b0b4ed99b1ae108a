// Response's header store: recycled strings, case-insensitive lookup.
#include "http/response.hpp"

#include "http/ascii.hpp"

namespace barrage::http {

namespace {
constexpr size_t kMaxSpareHeaders = 64;
}

std::string_view Response::header(std::string_view name) const noexcept {
  for (const auto& h : headers_)
    if (iequals(h.first, name)) return h.second;
  return {};
}

Response::Header* Response::new_header() noexcept {
  try {
    if (!spare_.empty()) {
      headers_.push_back(std::move(spare_.back()));
      spare_.pop_back();
    } else {
      headers_.emplace_back();
    }
  } catch (...) {
    return nullptr;
  }
  return &headers_.back();
}

bool Response::add_header(std::string_view name, std::string_view value) noexcept {
  Header* h = new_header();
  if (!h) return false;
  try {
    h->first.assign(name);
    h->second.assign(value);
  } catch (...) {
    headers_.pop_back();
    return false;
  }
  return true;
}

void Response::clear_headers() noexcept {
  for (auto& h : headers_) {
    if (spare_.size() >= kMaxSpareHeaders) break;
    h.first.clear();
    h.second.clear();
    try {
      spare_.push_back(std::move(h));
    } catch (...) {  // only the capacity is lost
    }
  }
  headers_.clear();
  if (headers_.capacity() > kMaxSpareHeaders) headers_.shrink_to_fit();
}

void Response::drop_body(size_t keep_capacity) noexcept {
  body_.clear();
  if (body_.capacity() > keep_capacity) std::string().swap(body_);
}

void Response::reset(size_t keep_body_capacity) noexcept {
  status_ = 0;
  started_ = headers_complete_ = false;
  clear_headers();
  body_.clear();
  if (body_.capacity() > keep_body_capacity) std::string().swap(body_);
}

}  // namespace barrage::http
