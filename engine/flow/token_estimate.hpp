// What a request will cost the tokens-per-minute bucket before it runs. Like
// OpenAI's own limiter, it counts the prompt from its size and the answer at
// its ceiling; the bucket is settled with the real usage afterwards.
#pragma once

#include <cstdint>
#include <string_view>

namespace barrage {

// ceil(body bytes / 4) + the completion ceiling when the body is a JSON
// object that names one at top level: the largest of max_tokens (OpenAI chat
// and Anthropic), max_completion_tokens and max_output_tokens (OpenAI
// Responses), times "n" (choices asked for) when that is an integer > 1.
// A body that is not a JSON object counts bytes / 4 alone. The body needs no
// padding. Never throws; saturates at INT64_MAX.
int64_t estimate_tokens(std::string_view body) noexcept;

}  // namespace barrage
