// Retry classification, backoff arithmetic and the Retry-After header in
// both its forms (seconds and HTTP-date).
#include "flow/retry_policy.hpp"

#include <charconv>
#include <cstring>

#include "barrage.h"

namespace barrage {

bool is_retryable_http(int s) noexcept {
  return s == 408 || s == 409 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

bool is_retryable_error(int status) noexcept {
  return status == BRG_E_CONNECT || status == BRG_E_IO || status == BRG_E_TIMEOUT;
}

int64_t backoff_delay_ms(const RetryPolicy& p, uint32_t retry, uint64_t random) noexcept {
  if (p.base_ms <= 0 || p.max_ms <= 0) return 0;
  int64_t cap = p.base_ms;
  for (uint32_t i = 1; i < retry && cap < p.max_ms; ++i) cap *= 2;
  if (cap > p.max_ms) cap = p.max_ms;
  return int64_t(random % uint64_t(cap + 1));
}

StatusSet::StatusSet() noexcept {
  for (int s : {408, 409, 429, 500, 502, 503, 504}) add(s);
}

namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A whole item must be digits: from_chars alone would accept "+5" or "5x"'s prefix.
bool parse_status(std::string_view s, int* out) noexcept {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  std::from_chars(s.data(), s.data() + s.size(), *out);
  return *out >= 100 && *out <= 599;
}

}  // namespace

std::string StatusSet::parse(std::string_view spec) {
  spec = trim(spec);
  if (spec.empty()) {
    *this = StatusSet();
    return {};
  }
  StatusSet next;
  std::memset(next.bits_, 0, sizeof next.bits_);
  if (spec == "none") {
    *this = next;
    return {};
  }
  while (true) {
    const size_t comma = spec.find(',');
    const std::string_view item = trim(spec.substr(0, comma));
    const size_t dash = item.find('-');
    int lo = 0, hi = 0;
    const bool ok = dash == std::string_view::npos
                        ? parse_status(item, &lo) && parse_status(item, &hi)
                        : parse_status(trim(item.substr(0, dash)), &lo) &&
                              parse_status(trim(item.substr(dash + 1)), &hi) && lo <= hi;
    if (!ok) {
      if (item.empty()) return "empty item in retry status list \"" + std::string(spec) + "\"";
      return "bad retry status \"" + std::string(item) +
             "\": expected a status 100-599 or a range like 500-504";
    }
    for (int s = lo; s <= hi; ++s) next.add(s);
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  *this = next;
  return {};
}

namespace {
double parse_number(std::string_view s) noexcept {
  s = trim(s);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v >= 0) || v > 1e9) return -1;
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
// days_from_civil, http://howardhinnant.github.io/date_algorithms.html).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) noexcept {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The year of a day count since 1970 (civil_from_days, same source).
int64_t year_from_days(int64_t z) noexcept {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  return yoe + era * 400 + (mp >= 10);
}

int days_in_month(int64_t y, int m) noexcept {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

bool iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  }
  return true;
}

// A cursor over an HTTP-date. Every read checks and advances, so a short or
// odd input fails cleanly at the first unexpected character.
class DateReader {
 public:
  explicit DateReader(std::string_view s) noexcept : s_(s) {}
  bool done() const noexcept { return s_.empty(); }
  char peek() const noexcept { return s_.empty() ? '\0' : s_.front(); }
  bool lit(char c) noexcept {
    if (peek() != c) return false;
    s_.remove_prefix(1);
    return true;
  }
  bool lit(std::string_view word) noexcept {
    if (!iequal(s_.substr(0, word.size()), word)) return false;
    s_.remove_prefix(word.size());
    return true;
  }
  std::string_view letters() noexcept {
    size_t n = 0;
    while (n < s_.size() && ((s_[n] | 0x20) >= 'a' && (s_[n] | 0x20) <= 'z')) ++n;
    const std::string_view w = s_.substr(0, n);
    s_.remove_prefix(n);
    return w;
  }
  bool digits(size_t n, int64_t* out) noexcept {
    if (s_.size() < n) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (s_[i] < '0' || s_[i] > '9') return false;
      v = v * 10 + (s_[i] - '0');
    }
    s_.remove_prefix(n);
    *out = v;
    return true;
  }
  bool month(int64_t* out) noexcept {
    static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; ++i) {
      if (lit(kMonths[i])) {
        *out = i + 1;
        return true;
      }
    }
    return false;
  }
  // time-of-day = hour ":" minute ":" second
  bool time(int64_t* h, int64_t* m, int64_t* s) noexcept {
    return digits(2, h) && lit(':') && digits(2, m) && lit(':') && digits(2, s);
  }

 private:
  std::string_view s_;
};

bool is_day_name(std::string_view w) noexcept {
  static constexpr std::string_view kDays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::string_view kLong[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                               "Friday", "Saturday", "Sunday"};
  for (int i = 0; i < 7; ++i) {
    if (iequal(w, kDays[i]) || iequal(w, kLong[i])) return true;
  }
  return false;
}

// RFC 9110 §5.6.7 HTTP-date -> seconds since 1970. The weekday is checked to
// be a day name but not against the date, as the RFC lets recipients do.
bool parse_http_date(std::string_view text, int64_t now_unix_ms, int64_t* unix_s) noexcept {
  DateReader r(trim(text));
  if (!is_day_name(r.letters())) return false;
  int64_t year = 0, month = 0, day = 0, hh = 0, mm = 0, ss = 0;
  if (r.lit(',')) {
    if (!r.lit(' ') || !r.digits(2, &day)) return false;
    if (r.lit(' ')) {
      // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
      if (!r.month(&month) || !r.lit(' ') || !r.digits(4, &year)) return false;
    } else {
      // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
      int64_t yy = 0;
      if (!r.lit('-') || !r.month(&month) || !r.lit('-') || !r.digits(2, &yy)) return false;
      // A two-digit year more than 50 years ahead means the century before.
      const int64_t now_year = year_from_days(now_unix_ms / 86400000);
      year = now_year - now_year % 100 + yy;
      if (year > now_year + 50) year -= 100;
    }
    if (!r.lit(' ') || !r.time(&hh, &mm, &ss) || !r.lit(' ') || !r.lit("GMT")) return false;
  } else {
    // asctime: Sun Nov  6 08:49:37 1994
    if (!r.lit(' ') || !r.month(&month) || !r.lit(' ')) return false;
    if (r.lit(' ')) {
      if (!r.digits(1, &day)) return false;
    } else if (!r.digits(2, &day)) {
      return false;
    }
    if (!r.lit(' ') || !r.time(&hh, &mm, &ss) || !r.lit(' ') || !r.digits(4, &year)) return false;
  }
  if (!r.done()) return false;
  // Second 60 is a leap second; POSIX time folds it into the next minute.
  if (day < 1 || day > days_in_month(year, int(month)) || hh > 23 || mm > 59 || ss > 60) return false;
  *unix_s = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
  return true;
}

}  // namespace

int64_t retry_after_ms(std::string_view retry_after, std::string_view retry_after_ms,
                       int64_t now_unix_ms) noexcept {
  if (!retry_after_ms.empty()) {
    double ms = parse_number(retry_after_ms);
    if (ms >= 0) return int64_t(ms + 0.999);
  }
  if (!retry_after.empty()) {
    double s = parse_number(retry_after);
    if (s >= 0) return int64_t(s * 1000 + 0.999);
    int64_t date_s = 0;
    // A clock past year 9999 (a broken one: the caller passes it in) would
    // overflow the date arithmetic; dates are then not understood.
    constexpr int64_t kYear10000Ms = 253402300800000;
    if (now_unix_ms >= 0 && now_unix_ms < kYear10000Ms && parse_http_date(retry_after, now_unix_ms, &date_s)) {
      const int64_t wait = date_s * 1000 - now_unix_ms;
      // The same horizon as the seconds form: beyond it, not understood.
      if (wait > int64_t(1e12)) return -1;
      return wait > 0 ? wait : 0;
    }
  }
  return -1;
}

}  // namespace barrage
