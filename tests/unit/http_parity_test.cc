#include <doctest/doctest.h>

#include <deque>

#include "worker-http/byte_ranges.h"
#include "worker-http/content_md5.h"
#include "worker-http/gzip.h"
#include "worker-http/request_id.h"
#include "worker-http/upload.h"

using namespace kelp;

namespace {

http::Request MakeUpload(std::string content_type, std::string body, std::string query = "",
                         std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::Request r;
  r.method = "PUT";
  r.path = r.url = "/3,01637037d6";
  r.query = std::move(query);
  if (!content_type.empty()) r.headers.emplace_back("content-type", std::move(content_type));
  for (auto& h : headers) r.headers.push_back(std::move(h));
  r.body = std::move(body);
  return r;
}

// Parses an upload; the request is kept alive for the views in the result.
Result<ParsedUpload> Upload(std::string content_type, std::string body, std::string query = "",
                            std::vector<std::pair<std::string, std::string>> headers = {}) {
  static std::deque<http::Request> requests;
  requests.push_back(MakeUpload(std::move(content_type), std::move(body), std::move(query), std::move(headers)));
  return ParseUpload(requests.back(), 1 << 30, 1 << 26);
}

bool AllOf(const std::string& s, size_t n, std::string_view alphabet) {
  return s.size() == n && s.find_first_not_of(alphabet) == std::string::npos;
}

std::string Ranges(std::string_view header, int64_t total) {
  std::vector<ByteRange> out;
  switch (ParseByteRanges(header, total, &out)) {
    case RangeParse::kAbsent: return "absent";
    case RangeParse::kInvalid: return "invalid";
    case RangeParse::kNoOverlap: return "no-overlap";
    case RangeParse::kRanges: break;
  }
  std::string s;
  for (const ByteRange& r : out) s += (s.empty() ? "" : " ") + std::to_string(r.start) + "+" + std::to_string(r.length);
  return s;
}

}  // namespace

// Each expectation was read off the Go volume server 4.48 for a 1024-byte blob.
TEST_CASE("Range headers parse as Go's volume server parses them") {
  CHECK(Ranges("", 1024) == "absent");
  CHECK(Ranges("bytes=0-3", 1024) == "0+4");
  CHECK(Ranges("bytes=0-3,9999-10000", 1024) == "0+4");  // ranges past the end are dropped
  CHECK(Ranges("bytes=9999-10000,0-3", 1024) == "0+4");
  CHECK(Ranges("bytes=1024-", 1024) == "no-overlap");
  CHECK(Ranges("bytes=1023-", 1024) == "1023+1");
  CHECK(Ranges("bytes=-0", 1024) == "1024+0");
  CHECK(Ranges("bytes=-2000", 1024) == "0+1024");
  CHECK(Ranges("bytes=5-2", 1024) == "invalid");
  CHECK(Ranges("bytes=0-3, 5-6", 1024) == "0+4 5+2");
  CHECK(Ranges("bytes=,0-1", 1024) == "0+2");
  CHECK(Ranges("bytes=0-1,", 1024) == "0+2");
  CHECK(Ranges("bytes=,", 1024) == "");
  CHECK(Ranges("bytes=abc", 1024) == "invalid");
  CHECK(Ranges("bytes=0-1,x", 1024) == "invalid");
  CHECK(Ranges("items=0-1", 1024) == "invalid");
  CHECK(Ranges("bytes= 1 - 2 ", 1024) == "1+2");
  CHECK(Ranges("bytes=+1-2", 1024) == "1+2");
  CHECK(Ranges("bytes=--1", 1024) == "1025+-1");
  CHECK(Ranges("bytes=99999999999999999999-", 1024) == "invalid");
  CHECK(Ranges("bytes=-99999999999999999999", 1024) == "invalid");
  CHECK(Ranges("bytes=-9223372036854775808", 1024) == "invalid");  // Go wraps to a negative start
  CHECK(Ranges("bytes=--9223372036854775807", 1024) == "invalid");
  CHECK(Ranges("bytes=0-9223372036854775807", 1024) == "0+1024");
  CHECK(Ranges("bytes=0-", 0) == "no-overlap");
  CHECK(ByteRange{1024, 0}.ContentRange(1024) == "bytes 1024-1023/1024");
  CHECK(ByteRange{1025, -1}.ContentRange(1024) == "bytes 1025-1023/1024");
}

TEST_CASE("Go's signed integer parsing") {
  int64_t v = 0;
  CHECK((ParseGoInt64("-9223372036854775808", &v) && v == INT64_MIN));
  CHECK((ParseGoInt64("9223372036854775807", &v) && v == INT64_MAX));
  CHECK_FALSE(ParseGoInt64("9223372036854775808", &v));
  CHECK_FALSE(ParseGoInt64("-", &v));
  CHECK_FALSE(ParseGoInt64("", &v));
  CHECK_FALSE(ParseGoInt64("1 ", &v));
}

TEST_CASE("multipart/byteranges framing is Go's multipart writer's") {
  const std::vector<ByteRange> ranges = {{0, 4}, {10, 3}};
  const MultipartRanges m = FrameRanges(ranges, "text/plain", 2400, std::string(60, 'b'));
  const std::string b(60, 'b');
  CHECK(m.heads[0] == "--" + b + "\r\nContent-Range: bytes 0-3/2400\r\nContent-Type: text/plain\r\n\r\n");
  CHECK(m.heads[1] == "\r\n--" + b + "\r\nContent-Range: bytes 10-12/2400\r\nContent-Type: text/plain\r\n\r\n");
  CHECK(m.tail == "\r\n--" + b + "--\r\n");
  // The 325-byte body Go sent for the same request.
  CHECK(m.ContentLength(ranges) == 325);
  CHECK(AllOf(RandomBoundary(), 60, "0123456789abcdef"));
  CHECK(RandomBoundary() != RandomBoundary());
}

TEST_CASE("request ids: nanosecond clock and 4 random bytes in upper-case hex") {
  const std::string a = NewRequestId(), b = NewRequestId();
  CHECK(AllOf(a, 24, "0123456789ABCDEF"));
  CHECK(a != b);
}

TEST_CASE("Content-MD5 is base64 of the MD5 digest") {
  CHECK(ContentMd5("abc") == "kAFQmDzST7DWlj99KOF/cg==");
  CHECK(ContentMd5("") == "1B2M2Y8AsgTpgAmY7PhCfg==");
}

TEST_CASE("gzip round trip, size counting and bomb limits") {
  const std::string text(100000, 'a');
  std::string gz, back;
  REQUIRE(Gzip(text, &gz));
  CHECK(IsGzipped(gz));
  CHECK(gz.size() < 1000);
  REQUIRE(Gunzip(gz, text.size(), &back));
  CHECK(back == text);
  CHECK_FALSE(Gunzip(gz, text.size() - 1, &back));
  uint64_t n = 0;
  CHECK((GunzippedSize(gz, 1 << 20, &n) && n == text.size()));
  CHECK_FALSE(GunzippedSize(gz, 1000, &n));
  CHECK_FALSE(GunzippedSize("\x1f\x8bnot gzip", 1 << 20, &n));
}

TEST_CASE("compressible uploads are stored gzipped the way Go decides") {
  const std::string text(3000, 'x');
  auto u = Upload("text/plain", text);
  REQUIRE(u.ok());
  CHECK(u.value().gzipped);
  CHECK(u.value().original_size == 3000);
  std::string back;
  REQUIRE(Gunzip(u.value().data, 1 << 20, &back));
  CHECK(back == text);
  // No type given: sniffed as text/plain, compressed.
  CHECK(Upload("", text).value().gzipped);
  // JSON is not on Go's list by type; names are compared whole, so "a.json" is not either.
  CHECK_FALSE(Upload("application/json", text).value().gzipped);
  CHECK_FALSE(Upload("image/png", text).value().gzipped);
  CHECK(Upload("application/xml", text).value().gzipped);
  CHECK(Upload("application/javascript", text).value().gzipped);
  // Replica writes keep what the first server stored.
  CHECK_FALSE(Upload("text/plain", text, "type=replicate").value().gzipped);
  // Less than 10% saved: stored as sent.
  CHECK_FALSE(Upload("text/plain", "short text").value().gzipped);
}

TEST_CASE("IsCompressibleFileType follows Go's table") {
  CHECK(IsCompressibleFileType("", "text/html") == std::pair{true, true});
  CHECK(IsCompressibleFileType(".svg", "") == std::pair{true, true});
  CHECK(IsCompressibleFileType("", "image/svg+xml") == std::pair{false, true});
  CHECK(IsCompressibleFileType(".zip", "") == std::pair{false, true});
  CHECK(IsCompressibleFileType("", "application/zstd") == std::pair{false, true});
  CHECK(IsCompressibleFileType("", "audio/x-wav") == std::pair{true, true});
  CHECK(IsCompressibleFileType("", "audio/mpeg") == std::pair{false, false});
  CHECK(IsCompressibleFileType("", "application/octet-stream") == std::pair{false, false});
}

TEST_CASE("Content-MD5 is verified against the uncompressed data, with Go's message") {
  CHECK(Upload("application/octet-stream", "abc", "", {{"content-md5", "kAFQmDzST7DWlj99KOF/cg=="}}).value().content_md5 ==
        "kAFQmDzST7DWlj99KOF/cg==");
  CHECK(Upload("application/octet-stream", "abc", "", {{"content-md5", "bad"}}).status().message() ==
        "Content-MD5 did not match md5 of file data expected [bad] received [kAFQmDzST7DWlj99KOF/cg==] size 3");
  // The MD5 of a compressed upload is of the text as sent.
  const std::string text(3000, 'y');
  const std::string md5 = ContentMd5(text);
  auto u = Upload("text/plain", text, "", {{"content-md5", md5}});
  REQUIRE(u.ok());
  CHECK(u.value().gzipped);
  CHECK(u.value().content_md5 == md5);
  // Without the header nothing is computed, and Go answers an empty Content-MD5.
  CHECK(Upload("application/octet-stream", "abc").value().content_md5.empty());
}

TEST_CASE("gzipped uploads: the size is the inflated size; bombs are refused") {
  std::string gz;
  REQUIRE(Gzip(std::string(5000, 'z'), &gz));
  auto u = Upload("application/octet-stream", gz, "", {{"content-encoding", "gzip"}});
  REQUIRE(u.ok());
  CHECK(u.value().gzipped);
  CHECK(u.value().original_size == 5000);
  CHECK(u.value().data == gz);
  std::string bomb;
  REQUIRE(Gzip(std::string(8 << 20, '\0'), &bomb));
  http::Request r = MakeUpload("application/octet-stream", bomb, "", {{"content-encoding", "gzip"}});
  auto limited = ParseUpload(r, 1 << 30, 1 << 20);
  CHECK(limited.status().message() == "gzipped data inflates to more than 1048576 bytes");
  // Data that claims gzip but does not inflate is kept and sized as sent, as Go does.
  auto broken = Upload("application/octet-stream", "\x1f\x8b garbage", "", {{"content-encoding", "gzip"}});
  REQUIRE(broken.ok());
  CHECK(broken.value().original_size == 10);
}
