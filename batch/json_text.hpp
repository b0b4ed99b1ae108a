// Writing JSON text by hand for the output lines: string escaping that
// never emits invalid UTF-8, and numbers without locale surprises.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace barrage {

// Appends s as a quoted JSON string. Quotes, backslashes and control bytes
// are escaped; bytes that are not valid UTF-8 become U+FFFD, so an engine
// error text quoting a server's bytes cannot corrupt the line.
void append_json_string(std::string& out, std::string_view s);
void append_json_int(std::string& out, int64_t v);
// Fixed notation with `decimals` digits after the point.
void append_json_fixed(std::string& out, double v, int decimals);
// Shortest form with at most `digits` significant digits.
void append_json_number(std::string& out, double v, int digits);

}  // namespace barrage
