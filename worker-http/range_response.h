// How a read's Range header shapes the answer (Go's ProcessRangeRequest): the
// whole body, one range (206 with Content-Range) or several (206
// multipart/byteranges), or a 416. The caller supplies the bytes of each part.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "worker-http/byte_ranges.h"
#include "worker-http/http_types.h"

namespace kelp {

struct RangePlan {
  bool multipart = false;
  std::vector<ByteRange> ranges;  // the parts when multipart
  MultipartRanges framing;        // when multipart
  int64_t start = 0, length = 0;  // otherwise: the one span to send (may be empty)
};

// Sets the status and the length/range headers on `resp`. Returns false when
// `resp` has become the error answer (416) and holds no body to fill.
bool PlanRangeResponse(const http::Request& r, int64_t total, const std::string& mtype, http::Response* resp,
                       RangePlan* plan);

// Fills `resp`'s body from bytes in memory as `plan` says: the multipart
// framing around each range, or the one span.
void FillRangeBody(const RangePlan& plan, std::string_view data, http::Response* resp);

// Go's http.Error: the headers set so far stay, the body is a line of text.
http::Response TextError(http::Response resp, int status, const std::string& message);

}  // namespace kelp
