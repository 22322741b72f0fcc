// `Range: bytes=` parsing with the Go volume server's semantics (4.48), which
// differ from RFC 9110 in places the HTTP tests pin down: signed numbers are
// accepted, ranges starting at or past the end are dropped (all dropped: "no
// overlap"), and a suffix range may come out empty or negative.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kelp {

struct ByteRange {
  int64_t start = 0;
  int64_t length = 0;  // may be <= 0 for the degenerate suffix forms Go accepts

  std::string ContentRange(int64_t total) const;  // "bytes a-b/total"
};

enum class RangeParse {
  kAbsent,     // no header: the whole body
  kInvalid,    // 416 "invalid range"
  kNoOverlap,  // 416 "invalid range: failed to overlap", Content-Range: bytes */total
  kRanges,     // possibly empty (e.g. "bytes=,"), which means the whole body
};

RangeParse ParseByteRanges(std::string_view header, int64_t total, std::vector<ByteRange>* out);

// Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no overflow.
bool ParseGoInt64(std::string_view s, int64_t* v);

// A multipart/byteranges body as Go's mime/multipart writes it, one part per
// range; `piece` is called for each part's data in order.
struct MultipartRanges {
  std::string boundary;  // 60 hex characters, like Go's multipart.Writer
  // The framing around the parts: heads[i] precedes part i, tail ends the body.
  std::vector<std::string> heads;
  std::string tail;
  int64_t ContentLength(const std::vector<ByteRange>& ranges) const;
};
MultipartRanges FrameRanges(const std::vector<ByteRange>& ranges, std::string_view part_type, int64_t total,
                            std::string boundary);
std::string RandomBoundary();

}  // namespace kelp
