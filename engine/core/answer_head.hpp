// What a request keeps from its latest answer's head for its result: the
// provider's request id always, the header fields when the caller asked for
// them (BRG_REQ_HEADERS; a provider's head is ~1 KiB, too much to copy into
// every result of a million-request batch unasked).
#pragma once

#include "http/response.hpp"

namespace barrage {

struct Request;

// Replaces what r kept from an earlier attempt's answer.
void keep_answer_head(Request& r, const http::Response& resp) noexcept;

}  // namespace barrage
