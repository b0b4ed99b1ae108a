// Checks an absolute request URL by the rules brg_submit applies to
// brg_request.url, so a batch line the engine would refuse is found in the
// validation pass (and by a dry run) before anything is sent. The C ABI has
// no call that checks a URL without submitting it, hence this copy of the rules.
#pragma once

#include <string>
#include <string_view>

namespace barrage {

// "" when `url` is usable, else a short reason ("missing host", "bad port").
// http:// is accepted only with allow_http (BRG_OPT_ALLOW_HTTP).
std::string check_url(std::string_view url, bool allow_http);

}  // namespace barrage
