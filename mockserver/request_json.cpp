// A minimal, strict JSON reader for request bodies and a JSON string writer
// for responses (see request_json.hpp).
#include "request_json.hpp"

namespace barrage::mock {
namespace {

constexpr int kMaxDepth = 64;

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Reader {
 public:
  explicit Reader(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  char peek() {
    ws();
    return p_ < end_ ? *p_ : '\0';
  }
  bool at_end() {
    ws();
    return p_ == end_;
  }
  const char* pos() const { return p_; }

  // Reads a string; decodes into *out (appending) when out is non-null.
  bool string(std::string* out) {
    if (peek() != '"') return false;
    ++p_;
    for (;;) {
      const char* run = p_;
      while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20) {
        ++p_;
      }
      if (out != nullptr) out->append(run, static_cast<size_t>(p_ - run));
      if (p_ >= end_ || static_cast<unsigned char>(*p_) < 0x20) return false;
      if (*p_ == '"') {
        ++p_;
        return true;
      }
      ++p_;  // backslash
      if (p_ >= end_) return false;
      char e = *p_++;
      char c = 0;
      switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            const char* save = p_;
            p_ += 2;
            uint32_t lo = 0;
            if (!hex4(&lo)) return false;
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p_ = save;  // not a pair: the next escape stands on its own
              cp = 0xFFFD;
            }
          } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;  // lone surrogate has no UTF-8 form
          }
          if (out != nullptr) append_utf8(out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out != nullptr) out->push_back(c);
    }
  }

  bool skip(int depth) {
    if (depth > kMaxDepth) return false;
    switch (peek()) {
      case '"':
        return string(nullptr);
      case '{':
        return object(depth, [&](std::string_view) { return skip(depth + 1); });
      case '[':
        return array(depth, [&] { return skip(depth + 1); });
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool boolean(bool* out) {
    char c = peek();
    if (c == 't') {
      *out = true;
      return literal("true");
    }
    if (c == 'f') {
      *out = false;
      return literal("false");
    }
    return skip(1);
  }

  // Calls on_key(key) with the reader positioned at each member's value;
  // on_key must consume the value.
  template <class F>
  bool object(int depth, F&& on_key) {
    if (depth > kMaxDepth || peek() != '{') return false;
    ++p_;
    if (peek() == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      key_.clear();
      if (!string(&key_)) return false;
      if (peek() != ':') return false;
      ++p_;
      // The view is only valid until on_key reads a nested object (which
      // reuses key_); every caller compares the key first.
      if (!on_key(std::string_view(key_))) return false;
      char c = peek();
      ++p_;
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  template <class F>
  bool array(int depth, F&& on_elem) {
    if (depth > kMaxDepth || peek() != '[') return false;
    ++p_;
    if (peek() == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!on_elem()) return false;
      char c = peek();
      ++p_;
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

 private:
  bool hex4(uint32_t* out) {
    if (end_ - p_ < 4) return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else return false;
    }
    *out = v;
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool digits() {
    const char* s = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ > s;
  }

  bool number() {
    if (p_ < end_ && *p_ == '-') ++p_;
    if (!digits()) return false;
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    return true;
  }

  const char* p_;
  const char* end_;
  std::string key_;
};

// One chat message: remembers its text if its role is "user". Role may come
// after content, so the text is decoded into scratch first.
bool scan_message(Reader& r, RequestFields* out) {
  if (r.peek() != '{') return r.skip(2);
  bool is_user = false;
  bool has_content = false;
  out->scratch.clear();
  bool ok = r.object(2, [&](std::string_view key) {
    if (key == "role") {
      std::string role;
      if (r.peek() != '"') return r.skip(3);
      if (!r.string(&role)) return false;
      is_user = role == "user";
      return true;
    }
    if (key == "content") {
      char c = r.peek();
      if (c == '"') {
        out->scratch.clear();
        has_content = true;
        return r.string(&out->scratch);
      }
      if (c == '[') {
        // Content parts: concatenate the "text" of each text part.
        out->scratch.clear();
        has_content = true;
        return r.array(3, [&] {
          if (r.peek() != '{') return r.skip(4);
          return r.object(4, [&](std::string_view part_key) {
            if (part_key == "text" && r.peek() == '"') return r.string(&out->scratch);
            return r.skip(5);
          });
        });
      }
      return r.skip(3);
    }
    return r.skip(3);
  });
  if (ok && is_user && has_content) {
    out->last_text.swap(out->scratch);
    out->has_text = true;
  }
  return ok;
}

// "prompt" or "input": a string, or an array whose elements are strings or
// token arrays; a flat array of numbers is one tokenised input.
bool scan_inputs(Reader& r, RequestFields* out) {
  auto one = [&](int depth) {
    char c = r.peek();
    const char* start = r.pos();
    if (c == '"') {
      out->last_text.clear();
      if (!r.string(&out->last_text)) return false;
      out->has_text = true;
    } else if (!r.skip(depth)) {
      return false;
    }
    out->input_hashes.push_back(fnv1a(std::string_view(start, static_cast<size_t>(r.pos() - start))));
    return true;
  };
  if (r.peek() != '[') return one(2);
  const char* start = r.pos();  // peek() skipped the whitespace
  bool numbers = true;
  size_t before = out->input_hashes.size();
  bool ok = r.array(2, [&] {
    char c = r.peek();
    if (c != '-' && (c < '0' || c > '9')) numbers = false;
    return one(3);
  });
  if (ok && numbers && out->input_hashes.size() > before) {
    out->input_hashes.resize(before);
    out->input_hashes.push_back(fnv1a(std::string_view(start, static_cast<size_t>(r.pos() - start))));
  }
  return ok;
}

}  // namespace

void RequestFields::clear() {
  model.clear();
  last_text.clear();
  has_text = false;
  stream = false;
  include_usage = false;
  input_hashes.clear();
}

bool scan_request_json(std::string_view body, RequestFields* out) {
  out->clear();
  Reader r(body);
  bool ok = r.object(1, [&](std::string_view key) {
    if (key == "model") {
      if (r.peek() != '"') return r.skip(2);
      return r.string(&out->model);
    }
    if (key == "messages") {
      if (r.peek() != '[') return r.skip(2);
      return r.array(2, [&] { return scan_message(r, out); });
    }
    if (key == "prompt" || key == "input") return scan_inputs(r, out);
    if (key == "stream") return r.boolean(&out->stream);
    if (key == "stream_options") {
      if (r.peek() != '{') return r.skip(2);
      return r.object(2, [&](std::string_view k) {
        if (k == "include_usage") return r.boolean(&out->include_usage);
        return r.skip(3);
      });
    }
    return r.skip(2);
  });
  return ok && r.at_end();
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  append_json_escaped(out, s);
  out.push_back('"');
}

void append_json_escaped(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      const auto* run = p;
      while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') ++p;
      out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
      }
      ++p;
      continue;
    }
    // Multi-byte UTF-8: copy a well-formed sequence, replace anything else.
    size_t len = 0;
    uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; }
    bool good = len != 0 && static_cast<size_t>(end - p) >= len;
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t i = 1; good && i < len; ++i) {
      if ((p[i] & 0xC0) != 0x80) good = false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (good && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) good = false;
    if (good) {
      out.append(reinterpret_cast<const char*>(p), len);
      p += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++p;
    }
  }
}

std::string_view utf8_prefix(std::string_view s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return s.substr(0, i);
      ++chars;
    }
  }
  return s;
}

uint64_t count_words(std::string_view s) {
  uint64_t words = 0;
  bool in_word = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

uint64_t fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = seed;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace barrage::mock
