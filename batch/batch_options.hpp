// brg_batch_options checked and turned into the runner's settings: the
// endpoint and API key resolved from the environment, the headers every
// request carries, the price table loaded.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "barrage.h"
#include "batch/price_table.hpp"

namespace barrage {

inline constexpr uint32_t kDefaultReorderWindow = 10000;

struct BatchSettings {
  uint32_t flags = 0;
  std::string input_path;
  std::string output_path;
  std::string endpoint;  // scheme://host[:port][/prefix], no trailing "/"
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every request
  uint32_t reorder_window = kDefaultReorderWindow;
  PriceTable prices;
  int64_t deadline_ms = 0;
  int32_t max_retries = -1;
  uint32_t shard_index = 0;
  uint32_t shard_count = 1;
};

using GetenvFn = const char* (*)(const char*);

// "" and *out, or why the options cannot be used. No message ever contains
// the API key.
std::string settings_from_options(const brg_batch_options* opts, GetenvFn getenv_fn, BatchSettings* out);

// "https://api.example.com/v1/" -> "https://api.example.com/v1", or "" with *why.
std::string normalize_endpoint(std::string_view endpoint, std::string* why);

}  // namespace barrage
