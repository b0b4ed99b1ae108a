// Retry classification, full-jitter backoff bounds, Retry-After in seconds
// and as an HTTP-date, and the configurable set of retryable statuses.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "barrage.h"
#include "flow/retry_policy.hpp"

namespace barrage {
namespace {

TEST(RetryPolicy, RetryableStatusesAreTheDocumentedSet) {
  for (int s : {408, 409, 429, 500, 502, 503, 504}) EXPECT_TRUE(is_retryable_http(s)) << s;
  for (int s : {200, 400, 401, 403, 404, 413, 422, 501, 505}) EXPECT_FALSE(is_retryable_http(s)) << s;
}

TEST(RetryPolicy, TransportErrorsRetryButCertificateAndSizeFailuresDoNot) {
  EXPECT_TRUE(is_retryable_error(BRG_E_CONNECT));
  EXPECT_TRUE(is_retryable_error(BRG_E_IO));
  EXPECT_TRUE(is_retryable_error(BRG_E_TIMEOUT));
  EXPECT_FALSE(is_retryable_error(BRG_E_TLS));
  EXPECT_FALSE(is_retryable_error(BRG_E_TOO_LARGE));
  EXPECT_FALSE(is_retryable_error(BRG_E_PROTOCOL));
  EXPECT_FALSE(is_retryable_error(BRG_E_DNS));
  EXPECT_FALSE(is_retryable_error(BRG_E_CANCELLED));
}

TEST(RetryPolicy, FullJitterStaysWithinTheDoublingCap) {
  RetryPolicy p{100, 1000};
  Random rng(42);
  for (uint32_t retry = 1; retry <= 8; ++retry) {
    int64_t cap = std::min<int64_t>(1000, 100 << (retry - 1));
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < 5000; ++i) {
      int64_t d = backoff_delay_ms(p, retry, rng.next());
      ASSERT_GE(d, 0);
      ASSERT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter spreads over the whole range, not just near the cap.
    EXPECT_LT(lo, cap / 10 + 1) << retry;
    EXPECT_GT(hi, cap * 9 / 10) << retry;
  }
  EXPECT_EQ(backoff_delay_ms(RetryPolicy{0, 1000}, 3, 12345), 0);
}

// 1994-11-06 08:49:37 GMT, the RFC's example instant.
constexpr int64_t kRfcExampleMs = 784111777000;
// 2025-03-01 00:00:00 GMT, for two-digit years.
constexpr int64_t k2025Ms = 1740787200000;

TEST(RetryPolicy, RetryAfterMsWinsThenSecondsThenNothing) {
  EXPECT_EQ(retry_after_ms("", "", k2025Ms), -1);
  EXPECT_EQ(retry_after_ms("2", "", k2025Ms), 2000);
  EXPECT_EQ(retry_after_ms("1.5", "", k2025Ms), 1500);
  EXPECT_EQ(retry_after_ms(" 3 ", "", k2025Ms), 3000);
  EXPECT_EQ(retry_after_ms("2", "250", k2025Ms), 250);
  EXPECT_EQ(retry_after_ms("2", "garbage", k2025Ms), 2000);
  EXPECT_EQ(retry_after_ms("-1", "", k2025Ms), -1);
  EXPECT_EQ(retry_after_ms("soon", "", k2025Ms), -1);
  // retry-after-ms wins over a date too.
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "40", kRfcExampleMs - 5000), 40);
}

TEST(RetryPolicy, HttpDateInAllThreeFormsGivesTheSameWait) {
  const int64_t now = kRfcExampleMs - 37250;  // 08:49:00 minus 250 ms
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "", now), 37250);
  EXPECT_EQ(retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", "", now), 37250);
  EXPECT_EQ(retry_after_ms("Sun Nov  6 08:49:37 1994", "", now), 37250);
  // Two-digit asctime days, surrounding blanks, any weekday name.
  EXPECT_EQ(retry_after_ms("Sun Nov 16 08:49:37 1994", "", now), 37250 + 10 * 86400000ll);
  EXPECT_EQ(retry_after_ms("  Sun, 06 Nov 1994 08:49:37 GMT ", "", now), 37250);
  EXPECT_EQ(retry_after_ms("Mon, 06 Nov 1994 08:49:37 GMT", "", now), 37250);
  // The engine's real case: a minute from now in 2025.
  EXPECT_EQ(retry_after_ms("Sat, 01 Mar 2025 00:01:00 GMT", "", k2025Ms), 60000);
  EXPECT_EQ(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", "", 1445412480000 - 1), 1);
  // Leap day and leap second.
  EXPECT_EQ(retry_after_ms("Thu, 29 Feb 2024 00:00:00 GMT", "", 1709164800000 - 1000), 1000);
  EXPECT_EQ(retry_after_ms("Sat, 31 Dec 2016 23:59:60 GMT", "", 1483228800000 - 1000), 1000);
}

TEST(RetryPolicy, HttpDateInThePastGivesZero) {
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "", kRfcExampleMs), 0);
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "", k2025Ms), 0);
  EXPECT_EQ(retry_after_ms("Sun Nov  6 08:49:37 1994", "", k2025Ms), 0);
  EXPECT_EQ(retry_after_ms("Thu, 01 Jan 1970 00:00:00 GMT", "", k2025Ms), 0);
}

TEST(RetryPolicy, Rfc850TwoDigitYearsNeverLieMoreThanFiftyYearsAhead) {
  // In 2025, "94" is 1994 (2094 would be 69 years ahead): past.
  EXPECT_EQ(retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", "", k2025Ms), 0);
  // "25" is this year: a day after now.
  EXPECT_EQ(retry_after_ms("Sunday, 02-Mar-25 00:00:00 GMT", "", k2025Ms), 86400000);
  // "74" is 2074, 49 years ahead: beyond the horizon of what we accept.
  EXPECT_EQ(retry_after_ms("Monday, 01-Mar-74 00:00:00 GMT", "", k2025Ms), -1);
  // "76" would be 2076, 51 years ahead: so 1976, past.
  EXPECT_EQ(retry_after_ms("Monday, 01-Mar-76 00:00:00 GMT", "", k2025Ms), 0);
}

TEST(RetryPolicy, AClockBeyondYear9999NeverOverflows) {
  // Found by tests/fuzz (fuzz_rate_headers): a two-digit year is read
  // against the clock, and a clock near INT64_MAX overflowed (UBSan).
  EXPECT_EQ(retry_after_ms("Sunday, 06-Nov-94 08:49:37 GMT", "", INT64_MAX - 1), -1);
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "", INT64_MAX), -1);
  EXPECT_EQ(retry_after_ms("120", "", INT64_MAX), 120000) << "the seconds form needs no clock";
}

TEST(RetryPolicy, MalformedHttpDatesAreNotUnderstood) {
  const int64_t now = kRfcExampleMs - 1000;
  for (const char* bad : {
           "Sun, 06 Nov 1994 08:49:37 UTC",   // only GMT
           "Sun, 06 Nov 1994 08:49:37",       // zone missing
           "Sun, 06 Nov 94 08:49:37 GMT",     // two-digit year in IMF form
           "Sun, 6 Nov 1994 08:49:37 GMT",    // one-digit day
           "Sun, 32 Nov 1994 08:49:37 GMT",   // no such day
           "Sun, 31 Nov 1994 08:49:37 GMT",   // November has 30
           "Tue, 29 Feb 2022 08:49:37 GMT",   // not a leap year
           "Sun, 00 Nov 1994 08:49:37 GMT",   // day zero
           "Sun, 06 Nov 1994 24:00:00 GMT",   // hour 24
           "Sun, 06 Nov 1994 08:60:00 GMT",   // minute 60
           "Sun, 06 Nov 1994 08:49:61 GMT",   // second 61
           "Sun, 06 Nub 1994 08:49:37 GMT",   // month
           "Fun, 06 Nov 1994 08:49:37 GMT",   // weekday
           "06 Nov 1994 08:49:37 GMT",        // weekday missing
           "Sun, 06 Nov 1994 08:49:37 GMT x", // trailing text
           "Sun,06 Nov 1994 08:49:37 GMT",    // space missing
           "Sun, 06 Nov 1994 8:49:37 GMT",    // one-digit hour
           "Sunday, 06-Nov-1994 08:49:37 GMT",
           "Sunday, 06-Nov-94 08:49:37",
           "Sun Nov 6 08:49:37 1994",         // asctime pads the day with a space
           "Sun Nov  6 08:49:37 94",
           "Sun Nov  6 08:49:37 1994 GMT",
           "Sun",
           "Sun,",
           "Sun, 06 Nov 1994 08:49:3",
           "2015-10-21T07:28:00Z",
           "soon",
       }) {
    EXPECT_EQ(retry_after_ms(bad, "", now), -1) << bad;
  }
  // Without a wall clock a date cannot be turned into a wait.
  EXPECT_EQ(retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", "", -1), -1);
  // A date further ahead than the seconds form's horizon (1e9 s).
  EXPECT_EQ(retry_after_ms("Fri, 01 Jan 9999 00:00:00 GMT", "", k2025Ms), -1);
}

TEST(RetryPolicy, StatusSetDefaultMatchesIsRetryableHttp) {
  StatusSet set;
  for (int s = 0; s < 700; ++s) EXPECT_EQ(set.contains(s), is_retryable_http(s)) << s;
  EXPECT_FALSE(set.contains(-1));
  EXPECT_FALSE(set.contains(INT32_MAX));
  EXPECT_FALSE(set.contains(INT32_MIN));
}

TEST(RetryPolicy, StatusSetParsesListsAndRanges) {
  StatusSet set;
  ASSERT_EQ(set.parse("429,500-504,408"), "");
  for (int s : {408, 429, 500, 501, 502, 503, 504}) EXPECT_TRUE(set.contains(s)) << s;
  for (int s : {409, 499, 505, 200, 100, 599}) EXPECT_FALSE(set.contains(s)) << s;
  ASSERT_EQ(set.parse(" 100 , 599,200 - 201 "), "");
  for (int s : {100, 200, 201, 599}) EXPECT_TRUE(set.contains(s)) << s;
  for (int s : {101, 199, 202, 429, 598}) EXPECT_FALSE(set.contains(s)) << s;
  ASSERT_EQ(set.parse("100-599"), "");
  for (int s = 100; s <= 599; ++s) ASSERT_TRUE(set.contains(s)) << s;
  ASSERT_EQ(set.parse("503-503"), "");
  for (int s = 100; s <= 599; ++s) ASSERT_EQ(set.contains(s), s == 503) << s;
  // "none" empties the set; "" is the default set again.
  ASSERT_EQ(set.parse("none"), "");
  for (int s = 100; s <= 599; ++s) ASSERT_FALSE(set.contains(s)) << s;
  ASSERT_EQ(set.parse(""), "");
  for (int s = 0; s < 700; ++s) ASSERT_EQ(set.contains(s), is_retryable_http(s)) << s;
}

TEST(RetryPolicy, StatusSetErrorsNameTheBadPartAndChangeNothing) {
  StatusSet set;
  ASSERT_EQ(set.parse("429"), "");
  struct Case {
    const char* spec;
    const char* named;
  };
  for (const Case& c : {
           Case{"abc", "abc"},        Case{"429,abc", "abc"},    Case{"99", "99"},
           Case{"600", "600"},        Case{"504-500", "504-500"}, Case{"500-", "500-"},
           Case{"-500", "-500"},      Case{"5OO", "5OO"},        Case{"429;500", "429;500"},
           Case{"+429", "+429"},      Case{"4290", "4290"},      Case{"500-600", "500-600"},
           Case{"500--504", "500--504"}, Case{"42 9", "42 9"},   Case{"0429", "0429"},
       }) {
    const std::string err = set.parse(c.spec);
    EXPECT_NE(err.find(c.named), std::string::npos) << c.spec << " -> " << err;
  }
  for (const char* spec : {"429,", ",429", "429,,500", " , "}) {
    EXPECT_NE(set.parse(spec), "") << spec;
  }
  for (int s = 100; s <= 599; ++s) ASSERT_EQ(set.contains(s), s == 429) << s;
}

TEST(RetryPolicy, RandomIsDeterministicPerSeedAndVaries) {
  Random a(7), b(7), c(8);
  uint64_t x = a.next();
  EXPECT_EQ(x, b.next());
  EXPECT_NE(x, c.next());
  EXPECT_NE(a.next(), x);
}

}  // namespace
}  // namespace barrage
