#include "worker-http/range_response.h"

#include <algorithm>

namespace kelp {

http::Response TextError(http::Response resp, int status, const std::string& message) {
  resp.Erase("Content-Type");
  resp.Erase("Content-Length");
  resp.status = status;
  resp.Set("Content-Type", "text/plain; charset=utf-8");
  resp.Set("X-Content-Type-Options", "nosniff");
  resp.body = message + "\n";
  resp.stream.reset();
  resp.buffer = {};
  return resp;
}

bool PlanRangeResponse(const http::Request& r, int64_t total, const std::string& mtype, http::Response* resp,
                       RangePlan* plan) {
  std::vector<ByteRange> ranges;
  switch (ParseByteRanges(r.HeaderOr("range"), total, &ranges)) {
    case RangeParse::kInvalid:
      *resp = TextError(std::move(*resp), 416, "invalid range");
      return false;
    case RangeParse::kNoOverlap:
      resp->Set("Content-Range", "bytes */" + std::to_string(total));
      *resp = TextError(std::move(*resp), 416, "invalid range: failed to overlap");
      return false;
    case RangeParse::kAbsent:
    case RangeParse::kRanges:
      break;
  }
  // Go answers ranges that add up to more than the body with an empty 200; kelp
  // sends the whole body instead (docs/compatibility.md).
  int64_t sum = 0;
  for (const ByteRange& br : ranges) sum += br.length;
  if (sum > total) ranges.clear();
  if (ranges.size() > 1) {
    for (const ByteRange& br : ranges) {
      if (br.start > total) {
        *resp = TextError(std::move(*resp), 416, "Out of Range");
        return false;
      }
    }
    plan->multipart = true;
    plan->framing = FrameRanges(ranges, mtype, total, RandomBoundary());
    resp->Erase("Content-Type");
    resp->Set("Content-Type", "multipart/byteranges; boundary=" + plan->framing.boundary);
    // Go states the length itself unless the parts are gzip (then net/http adds it).
    if (!resp->Has("Content-Encoding")) resp->Set("Content-Length", std::to_string(plan->framing.ContentLength(ranges)));
    resp->status = 206;
    plan->ranges = std::move(ranges);
    return true;
  }
  plan->start = 0;
  plan->length = total;
  if (ranges.size() == 1) {
    resp->status = 206;
    resp->Set("Content-Range", ranges[0].ContentRange(total));
    // Go's degenerate suffix ranges ("-0", "--1") select nothing.
    plan->start = ranges[0].start;
    plan->length = ranges[0].start > total ? 0 : std::max<int64_t>(ranges[0].length, 0);
  }
  // Go sets the length itself; a degenerate range ("--1") gets none, so net/http chunks an empty body.
  if (ranges.empty() || ranges[0].length >= 0) resp->Set("Content-Length", std::to_string(plan->length));
  return true;
}

void FillRangeBody(const RangePlan& plan, std::string_view data, http::Response* resp) {
  if (!plan.multipart) {
    if (plan.length > 0) resp->body.assign(data.substr(size_t(plan.start), size_t(plan.length)));
    return;
  }
  resp->body.reserve(size_t(plan.framing.ContentLength(plan.ranges)));
  for (size_t i = 0; i < plan.ranges.size(); ++i) {
    resp->body += plan.framing.heads[i];
    if (plan.ranges[i].length > 0) resp->body.append(data.substr(size_t(plan.ranges[i].start), size_t(plan.ranges[i].length)));
  }
  resp->body += plan.framing.tail;
}

}  // namespace kelp
